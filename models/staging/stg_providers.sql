select
  practice_id,
  provider_id,
  name as provider_name,
  speciality
from {{source "ehr" "providers"}}
