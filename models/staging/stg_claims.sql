select
  practice_id,
  claim_id,
  patient_id,
  provider_id,
  encounter_id,
  primary_payer_id,
  service_date,
  status_primary,
  coalesce(outstanding_primary, 0) + coalesce(outstanding_secondary, 0) + coalesce(outstanding_patient, 0) as outstanding_total
from {{source "ehr" "claims"}}
