{{config materialized="ephemeral"}}
-- Encounters with their start in the practice's own time zone (from the tenants relation,
-- never from per-practice rendering).
select
  e.*,
  cast(e.started_at at time zone t.timezone as date) as local_start_date
from {{ref "stg_encounters"}} e
join {{ref "tenants"}} t on t.practice_id = e.practice_id
