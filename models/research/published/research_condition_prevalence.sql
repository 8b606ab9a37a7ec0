{{config k_anonymity_count="persons"}}
-- Population health: persons (not records: one person seen at two practices counts once) with
-- each condition, by broad age group and sex. tsform publishes no cell below k, and suppresses
-- further cells where a margin (a total over any of these columns, here or in another published
-- table) would give a suppressed count back. Each person has one demographic row (the first
-- band and category across practices), so that the counts add up over every margin.
with persons as (
  select
    person_token,
    min(age_band) as age_band,
    min(sex) as sex
  from {{ref "pseudo_persons"}}
  group by person_token
),
conditions as (
  select distinct person_token, condition_code, condition_description from {{ref "pseudo_conditions"}}
)
select
  case
    when p.age_band is null then null
    when cast(substring(p.age_band, 1, 2) as integer) < 20 then '00-19'
    when cast(substring(p.age_band, 1, 2) as integer) < 45 then '20-44'
    when cast(substring(p.age_band, 1, 2) as integer) < 65 then '45-64'
    else '65+'
  end as age_group,
  p.sex,
  c.condition_code,
  min(c.condition_description) as condition_description,
  count(distinct c.person_token) as persons
from conditions c
join persons p on p.person_token = c.person_token
group by 1, 2, 3
