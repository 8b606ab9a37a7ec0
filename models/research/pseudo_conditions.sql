-- Diagnoses by person token; onset shifted and kept to the month.
select
  c.practice_id,
  v.person_token,
  c.condition_code,
  c.condition_description,
  {{month_of (shift_date "c.onset_date" "v.date_shift_days")}} as onset_month,
  c.is_active
from {{ref "stg_conditions"}} c
join {{ref "vault_person_tokens"}} v on v.practice_id = c.practice_id and v.patient_id = c.patient_id
