{{config k_anonymity_count="persons"}}
-- Persons with type 2 diabetes, its complications or its usual precursors (prediabetes,
-- obesity, hypertension, hyperlipidemia, metabolic syndrome) across practices, by how many
-- practices saw them and how many encounters they had there. An aggregate, not a list of
-- persons: a cohort of person tokens would single out each member (its counts are unique).
with cohort as (
  select distinct person_token
  from {{ref "pseudo_conditions"}}
  where condition_code in (
    '44054006', '127013003', '157141000119108', '90781000119102', '1551000119108',
    '714628002', '162864005', '59621000', '55822004', '237602007'
  )
),
per_person as (
  select
    c.person_token,
    count(distinct e.practice_token) as practices,
    count(*) as encounters
  from cohort c
  join {{ref "pseudo_encounters"}} e on e.person_token = c.person_token
  group by c.person_token
)
select
  case when practices >= 4 then '4+' else '1-3' end as practices_band,
  case when encounters >= 60 then '60+' else '1-59' end as encounters_band,
  count(distinct person_token) as persons
from per_person
group by 1, 2
