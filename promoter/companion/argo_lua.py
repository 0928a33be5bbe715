"""The parts every Lua health check promoter writes for Argo CD shares (TFJob, JobSet).

Argo CD runs a check with the object as `obj` and takes the table it returns (`hs`, with
`status` and `message`). Both training kinds report Kubernetes-style conditions
(`status.conditions[]` with `type`, `status` and `message`), and both checks read them the same
way: the latest condition of each type, whether it holds (`status == "True"`), and its message
or a default. What differs per kind (which conditions, in which order, what else is read) stays
with the kind.
"""

from __future__ import annotations

LUA_CONDITIONS = """local latest = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    latest[condition.type] = condition
  end
end
local function holds(kind)
  return latest[kind] ~= nil and latest[kind].status == "True"
end
local function message(kind, default)
  if latest[kind].message ~= nil and latest[kind].message ~= "" then
    return latest[kind].message
  end
  return default
end
"""
"""Lua: `latest` (condition type -> its latest condition), `holds(kind)` and
`message(kind, default)`. An object without conditions holds none."""


def lua_verdict(condition: str, *, status: str, default: str) -> str:
    """Lua: if `condition` holds, return `status` with the condition's message (or
    `default`). `status` must be one of Argo CD's health statuses."""
    return (f'if holds("{condition}") then\n'
            f'  hs.status = "{status}"\n'
            f'  hs.message = message("{condition}", "{default}")\n'
            "  return hs\n"
            "end\n")
