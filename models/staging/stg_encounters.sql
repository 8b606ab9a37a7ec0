{{config materialized="incremental" unique_key="encounter_id"}}
-- Incremental per practice: each practice's high-water mark is its own max(updated_at),
-- because the model's own relation (this) is read as this practice's slice only.
select
  practice_id,
  encounter_id,
  patient_id,
  provider_id,
  payer_id,
  encounter_class,
  code as encounter_code,
  description as encounter_description,
  started_at,
  stopped_at,
  base_encounter_cost,
  total_claim_cost,
  payer_coverage,
  reason_code,
  updated_at
from {{source "ehr" "encounters"}}
{{#if is_incremental}}
where updated_at > (select coalesce(max(updated_at), timestamptz '1900-01-01 00:00:00+00') from {{this}})
{{/if}}
