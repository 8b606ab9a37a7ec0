-- One row per (practice, patient record), pseudonymized: tokens instead of identity, quasi-
-- identifiers generalized by the Safe Harbor macros. Still per practice (practice_id is kept
-- only to replace this practice's slice; the published layer drops it).
select
  p.practice_id,
  v.person_token,
  v.practice_token,
  {{birth_year "p.birth_date"}} as birth_year,
  {{age_band "p.birth_date"}} as age_band,
  {{sex_category "p.sex"}} as sex,
  {{zip3 "p.zip"}} as zip3,
  p.death_date is not null as deceased
from {{ref "stg_patients"}} p
join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id
