{{config materialized="view"}}
-- The front desk's roster: one row per patient record with their latest visit. A view over
-- every practice; in PostgreSQL it is security_invoker, so row-level security of the tables
-- underneath applies to whoever reads it.
select
  p.practice_id,
  p.patient_id,
  p.mrn,
  p.first_name,
  p.last_name,
  p.birth_date,
  max(e.started_at) as last_visit_at,
  count(e.encounter_id) as visits
from {{ref "stg_patients"}} p
left join {{ref "stg_encounters"}} e on e.practice_id = p.practice_id and e.patient_id = p.patient_id
group by p.practice_id, p.patient_id, p.mrn, p.first_name, p.last_name, p.birth_date
