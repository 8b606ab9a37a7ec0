-- Encounters by person token, dated to the month after the person's secret date shift.
select
  e.practice_id,
  v.person_token,
  v.practice_token,
  {{month_of (shift_date "e.started_at" "v.date_shift_days")}} as encounter_month,
  e.encounter_class,
  e.total_claim_cost
from {{ref "stg_encounters"}} e
join {{ref "vault_person_tokens"}} v on v.practice_id = e.practice_id and v.patient_id = e.patient_id
