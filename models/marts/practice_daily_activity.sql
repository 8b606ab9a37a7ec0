select
  practice_id,
  local_start_date as activity_date,
  encounter_class,
  count(*) as encounters,
  count(distinct patient_id) as distinct_patients,
  cast(sum(total_claim_cost) as decimal(18, 2)) as total_claim_cost
from {{ref "int_encounters_local"}}
group by practice_id, local_start_date, encounter_class
