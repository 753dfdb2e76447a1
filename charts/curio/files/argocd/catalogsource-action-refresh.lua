-- Argo CD action "refresh" on a curio.dev CatalogSource: creates a RefreshJob for it
-- (Argo CD 2.8 or later, which lets actions create resources). The job's name is unique per
-- second; the audit trail records who asked, through the webhook.
local os = require("os")
local job = {}
job.apiVersion = "curio.dev/v1alpha1"
job.kind = "RefreshJob"
job.metadata = {}
job.metadata.name = string.sub(obj.metadata.name, 1, 200) .. "-argocd-" .. os.date("!%Y%m%d%H%M%S")
job.metadata.namespace = obj.metadata.namespace
job.spec = {}
job.spec.sourceRef = {name = obj.metadata.name}
job.spec.reason = "refresh action from Argo CD"
job.spec.ttlSecondsAfterFinished = 3600
local impacted = {}
impacted[1] = {operation = "create", resource = job}
impacted[2] = {operation = "patch", resource = obj}
return impacted
