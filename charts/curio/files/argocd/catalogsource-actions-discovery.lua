-- Argo CD resource actions of a curio.dev CatalogSource: "refresh" files a RefreshJob.
local actions = {}
actions["refresh"] = {["disabled"] = (obj.spec ~= nil and obj.spec.suspend == true)}
return actions
