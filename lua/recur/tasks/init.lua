-- recur.tasks: what `recur train|eval|predict` do differently for each kind of model,
-- one module per kind (lm, seq2seq, classify, forecast); recur.job runs them.
--
-- A task module has:
--   kind                     its name, the model class's kind
--   OPTIONS                  the set of `recur train` options it takes beyond job's
--   DEFAULTS                 its default settings (over job.DEFAULTS)
--   ARCH                     the settings a checkpoint fixes (architecture, levels),
--                            in the order they are checked; arch_of(info) reads them
--   LOOP                     its settings a resumed run must keep (besides job's)
--   TRAINING                 the model's settings that act in training only (in its
--                            config, read by arch_of): a resumed run keeps them, a run
--                            --init-from a checkpoint sets them anew; Model, the class
--   prepare(s, opts, info)   reads and splits the data, fits (or, from a checkpoint's
--                            info, reuses) the vocabularies or scaler; returns
--                            {data = {role = object}, batcher, val_batcher,
--                            test_batcher, notes = {lines}}
--   build(s, prepared)       a new model
--   describe(s, prepared, model)   the line printed before training
--   evaluate(model, info, path, progress)  the measures on a file, one line; progress(total),
--                                  when given, makes the per-batch callback of a pass
--   PREDICT, predict(model, info, path, opts, write)   predict's options and output
local tasks = {}

local NAMES = {"lm", "seq2seq", "classify", "forecast"}
tasks.NAMES = NAMES

function tasks.get(kind)
  for _, name in ipairs(NAMES) do
    if kind == name then return require("recur.tasks." .. name) end
  end
  error(string.format("tasks: no task for a model of kind '%s' (recur train|eval|predict take %s)", tostring(kind), table.concat(NAMES, ", ")), 0)
end

-- The tasks that take option k, in NAMES order.
function tasks.owners(k)
  local out = {}
  for _, name in ipairs(NAMES) do
    if tasks.get(name).OPTIONS[k] then out[#out + 1] = name end
  end
  return out
end

return tasks
