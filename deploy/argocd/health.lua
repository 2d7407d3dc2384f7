-- Argo CD health check for halb.dev/HALoadBalancer (argocd-cm key
-- resource.customizations.health.halb.dev_HALoadBalancer). Lua 5.1 without the string
-- library, as Argo CD runs it. health_test.yaml lists the cases.
local hs = { status = "Progressing", message = "Waiting for the halb operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the halb operator to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
local degraded = nil
local reconciling = nil
local stalled = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Degraded" then degraded = c end
  if c.type == "Reconciling" then reconciling = c end
  if c.type == "Stalled" then stalled = c end
end
-- Degraded=True: traffic may still flow, but something needs attention (split brain, no
-- MASTER, the reserved IP on a BACKUP, an unreachable node). It can be True while Ready is.
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end
-- kstatus: Stalled=True means only a person can fix it (an invalid spec, a missing Secret, a
-- refused config); the operator does not retry.
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if ready == nil then
  return hs
end
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.message = "Waiting for the halb operator to observe generation " .. tostring(generation)
  return hs
end
-- Reconciling=True while Ready: a planned failover is moving MASTER (FailoverRequested).
if ready.status == "True" and reconciling ~= nil and reconciling.status == "True" then
  hs.message = (reconciling.reason or "") .. ": " .. (reconciling.message or "")
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
-- An operator that writes no Stalled condition (before kstatus): the reasons that stay until a
-- person acts. With Stalled present, every Ready=False is a step on the way to Ready.
local terminal = {
  InvalidSpec = true,      -- the spec breaks a rule the schema cannot express
  SecretNotFound = true,   -- a Secret or key the spec names does not exist
  CloudRequestRefused = true, -- DigitalOcean refused for good (a missing token scope, a bad request)
  ValidationFailed = true, -- HAProxy or keepalived refused the rendered config
  HostKeyChanged = true,   -- a node's SSH host key differs from the pinned one
  WouldLockOut = true,     -- spec.access.sshSourceCIDRs leaves out the operator's address
}
if stalled == nil and ready.status == "False" and terminal[ready.reason] then
  hs.status = "Degraded"
end
hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
return hs
