-- Size of each chronic-condition panel: patients with an active diagnosis, and how many of them
-- were seen in the last 12 months of the practice's activity (the rest are care gaps).
with latest as (
  select practice_id, max(started_at) as latest_at from {{ref "stg_encounters"}} group by practice_id
),
seen as (
  select distinct e.practice_id, e.patient_id
  from {{ref "stg_encounters"}} e
  join latest l on l.practice_id = e.practice_id
  where e.started_at > l.latest_at - {{var "panel_months"}} * interval '1 month'
)
select
  c.practice_id,
  c.condition_code,
  min(c.condition_description) as condition_description,
  count(distinct c.patient_id) as active_patients,
  count(distinct s.patient_id) as seen_last_12m,
  count(distinct c.patient_id) - count(distinct s.patient_id) as care_gap_patients
from {{ref "stg_conditions"}} c
left join seen s on s.practice_id = c.practice_id and s.patient_id = c.patient_id
where c.is_active
group by c.practice_id, c.condition_code
