select
  practice_id,
  medication_id,
  patient_id,
  encounter_id,
  payer_id,
  code as medication_code,
  description as medication_description,
  started_at,
  stopped_at,
  dispenses,
  base_cost,
  payer_coverage,
  total_cost
from {{source "ehr" "medications"}}
