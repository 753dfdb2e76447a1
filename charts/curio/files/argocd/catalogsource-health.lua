-- Argo CD health of a curio.dev CatalogSource, from its kstatus conditions.
-- Healthy: Ready. Progressing: first fetch, a new generation not seen yet, or a retried
-- failure (Reconciling). Degraded: Stalled, or Ready=False. Suspended: spec.suspend, or
-- refreshes paused by a CatalogPolicy or the controller's kill switch.
local hs = {}
local function condition(conditions, kind)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == kind then return c end
  end
  return nil
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Refreshes are suspended (spec.suspend); the last good catalog is served"
  return hs
end
local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller's first refresh"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to refresh generation " .. tostring(generation)
  return hs
end
local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
local reconciling = condition(status.conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "False" and reconciling.reason == "PausedByPolicy" then
  hs.status = "Suspended"
  hs.message = reconciling.message or "Refreshes are paused by policy"
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = (reconciling.reason or "Reconciling") .. ": " .. (reconciling.message or "")
  return hs
end
local ready = condition(status.conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report Ready"
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
else
  hs.status = "Progressing"
  hs.message = ready.message or "Refreshing"
end
return hs
