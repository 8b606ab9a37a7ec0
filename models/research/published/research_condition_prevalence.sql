{{config k_anonymity_count="persons"}}
-- Population health: persons (not records: one person seen at two practices counts once) with
-- each condition, by age band, sex and ZIP3; counts below k are suppressed.
with persons as (
  select distinct person_token, age_band, sex, zip3 from {{ref "pseudo_persons"}}
),
conditions as (
  select distinct person_token, condition_code, condition_description from {{ref "pseudo_conditions"}}
)
select
  p.age_band,
  p.sex,
  p.zip3,
  c.condition_code,
  min(c.condition_description) as condition_description,
  {{suppress_small "count(distinct c.person_token)"}} as persons
from conditions c
join persons p on p.person_token = c.person_token
group by p.age_band, p.sex, p.zip3, c.condition_code
