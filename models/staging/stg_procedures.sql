select
  practice_id,
  procedure_id,
  patient_id,
  encounter_id,
  code as procedure_code,
  description as procedure_description,
  started_at,
  stopped_at,
  base_cost
from {{source "ehr" "procedures"}}
