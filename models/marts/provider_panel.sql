with latest as (
  select practice_id, max(started_at) as latest_at
  from {{ref "stg_encounters"}}
  group by practice_id
),
active as (
  select e.practice_id, e.provider_id, count(distinct e.patient_id) as active_patients
  from {{ref "stg_encounters"}} e
  join latest l on l.practice_id = e.practice_id
  where e.started_at > l.latest_at - {{var "panel_months"}} * interval '1 month'
    and e.started_at <= l.latest_at
  group by e.practice_id, e.provider_id
)
select
  p.practice_id,
  p.provider_id,
  coalesce(a.active_patients, 0) as active_patients_12m
from {{ref "stg_providers"}} p
left join active a on a.practice_id = p.practice_id and a.provider_id = p.provider_id
