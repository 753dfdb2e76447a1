-- Argo CD health of a curio.dev RefreshJob, from its phase: Pending and Running are
-- Progressing, Succeeded is Healthy, Failed is Degraded.
local hs = {}
local status = obj.status
local phase = nil
if status ~= nil then phase = status.phase end
if phase == nil or phase == "Pending" then
  hs.status = "Progressing"
  hs.message = "Waiting for a slot in the refresh pool"
elseif phase == "Running" then
  hs.status = "Progressing"
  hs.message = "Refreshing (attempt " .. tostring(status.attempts or 1) .. ")"
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = status.message or "Refreshed"
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = status.message or "The refresh failed"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
