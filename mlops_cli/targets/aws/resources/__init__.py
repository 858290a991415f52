"""One module per AWS resource of a deployment, each holding its `find`, `plan` and `teardown`.

Every module keeps the same contract, so `planner.py` and `teardown.py` only orchestrate them:
- `find(ctx, d, ...)` makes read-only calls and returns what exists under our name (or None);
- `plan(ctx, d, plan, ...)` records what it observed on the `Plan` and appends the mutating calls
  that close the gap (none when nothing differs); a resource with our name but not our tags is
  observed as "foreign" and never modified;
- `teardown(ctx, d, foreign, ...)` returns the `Deletion`s for what is ours and reports, through
  `foreign`, what only shares our name.

Modules: role (IAM role + inline policy), log_group, bucket (S3 artifact bucket + package object),
function (Lambda function, its published versions and the `live` alias), api (HTTP API with its
integration, routes and `$default` stage), permission (the Lambda permission for the API).
"""
