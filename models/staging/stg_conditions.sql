select
  practice_id,
  condition_id,
  patient_id,
  encounter_id,
  code as condition_code,
  description as condition_description,
  onset_date,
  abatement_date,
  abatement_date is null as is_active
from {{source "ehr" "conditions"}}
