-- Persons with type 2 diabetes (SNOMED 44054006 and its complications) across practices, with
-- how many practices saw them and their encounter counts. No quasi-identifier is published.
with diabetic as (
  select distinct person_token
  from {{ref "pseudo_conditions"}}
  where condition_code in ('44054006', '127013003', '157141000119108', '90781000119102', '1551000119108')
)
select
  d.person_token,
  count(distinct e.practice_token) as practices,
  count(*) as encounters
from diabetic d
join {{ref "pseudo_encounters"}} e on e.person_token = d.person_token
group by d.person_token
