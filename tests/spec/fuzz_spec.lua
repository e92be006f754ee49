-- tests/spec/fuzz_spec.lua: the fuzz targets' seeds, the corpus `make fuzz` grew and the inputs
-- that once broke a target (regress/) are replayed through the same targets, built without
-- libFuzzer: every one passes.
local S = require "support"

local function replay(target, ...)
  local dir = S.tmpdir()
  local paths = {}
  for _, p in ipairs{ ... } do paths[#paths + 1] = S.quote(p) end
  os.execute(string.format("build/fuzz_%s_replay %s >%s/out 2>%s/err; echo $? >%s/rc", target,
    table.concat(paths, " "), dir, dir, dir))
  local rc, out, err = tonumber(S.read(dir .. "/rc")), S.read(dir .. "/out"), S.read(dir .. "/err")
  os.execute("rm -rf " .. S.quote(dir))
  return rc, out, err
end

describe("fuzz corpora", function()
  for _, t in ipairs{
    { "pickle", 400, "the pickle decoder passes every seed and corpus input (decodes or refuses cleanly; round trips are stable)" },
    { "wire", 20, "the wire target passes every seed and corpus input (handshakes and request streams through a real connection)" },
    { "lua", 400, "the Lua bridge target passes every seed and corpus input (values through a Lua type's methods come back as they went in; values built in Lua convert to what they hold)" },
  } do
    local target, least, what = t[1], t[2], t[3]
    it(what, function()
      local dir = "tests/fuzz/"
      local rc, out, err = replay(target, dir .. "seeds/" .. target, dir .. "corpus/" .. target, dir .. "regress/" .. target)
      assert.are.equal(0, rc, err)
      local n = tonumber(out:match("(%d+) inputs replayed"))
      assert.is_true(n ~= nil and n >= least, out)
    end)
  end

  it("the replayer fails on a path that is not there", function()
    local rc, _, err = replay("pickle", "tests/fuzz/no-such-corpus")
    assert.are_not.equal(0, rc)
    assert.matches("no%-such%-corpus", err)
  end)
end)
