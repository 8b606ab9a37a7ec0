-- Money still owed to the practice, by claim status and age of the service.
with claims as (
  select
    c.practice_id,
    c.status_primary,
    c.outstanding_total,
    c.service_date,
    max(c.service_date) over (partition by c.practice_id) as latest_service
  from {{ref "stg_claims"}} c
)
select
  practice_id,
  status_primary as claim_status,
  case
    when service_date > latest_service - interval '30 days' then '0-30'
    when service_date > latest_service - interval '90 days' then '31-90'
    else '90+'
  end as age_bucket,
  count(*) as claims,
  sum(case when outstanding_total > 0 then 1 else 0 end) as open_claims,
  cast(sum(outstanding_total) as decimal(18, 2)) as outstanding_total
from claims
group by 1, 2, 3
