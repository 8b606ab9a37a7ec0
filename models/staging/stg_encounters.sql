{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}
-- Incremental per practice: the high-water mark is per practice_id, so each practice keeps its
-- own even when several practices share one statement (batch_incremental).
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
-- One high-water mark per practice, aggregated once and joined: PostgreSQL evaluates a correlated
-- sub-select (`where t.practice_id = e.practice_id`) once per source row, which made a large
-- practice's steady run quadratic (3.4 s for 6,805 encounters against 0.05 s joined).
left join (select t.practice_id, max(t.updated_at) as high_water from {{this}} t group by t.practice_id) hw
  on hw.practice_id = e.practice_id
where e.updated_at > coalesce(hw.high_water, timestamptz '-infinity')
{{/if}}
