-- An encounter that stops before it starts is a broken extract.
select practice_id, encounter_id
from {{ref "stg_encounters"}}
where stopped_at < started_at
