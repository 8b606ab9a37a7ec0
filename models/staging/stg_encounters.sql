{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}
-- Incremental per practice: the high-water mark is correlated on practice_id, so each practice
-- keeps its own even when several practices share one statement (batch_incremental).
select
  e.practice_id,
  e.encounter_id,
  e.patient_id,
  e.provider_id,
  e.payer_id,
  e.encounter_class,
  e.code as encounter_code,
  e.description as encounter_description,
  e.started_at,
  e.stopped_at,
  e.base_encounter_cost,
  e.total_claim_cost,
  e.payer_coverage,
  e.reason_code,
  e.updated_at
from {{source "ehr" "encounters"}} e
{{#if is_incremental}}
where e.updated_at > coalesce(
  (select max(t.updated_at) from {{this}} t where t.practice_id = e.practice_id),
  timestamptz '1900-01-01 00:00:00+00'
)
{{/if}}
