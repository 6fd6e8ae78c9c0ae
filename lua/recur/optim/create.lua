-- optim.create(name, model, opts): an optimizer chosen by name, as a command-line flag
-- gives it (`recur train --optimizer sgd --momentum 0.9`).
--   name   "sgd" | "adam" | "adamw" | "rmsprop" | "adagrad"
--   model  whatever the optimizer classes take (a module, {params=, grads=}, pairs)
--   opts   that class's options (lr, weight_decay, betas, ...), passed on unchanged and
--          checked by the class; nil keeps its defaults (SGD has none for lr and needs it)
-- momentum is an option of SGD and RMSprop only. The other classes would refuse it
-- anyway; refusing it here says which optimizers take it instead of listing Adam's options.
local create = {}

local classes = {
  sgd = "recur.optim.SGD",
  adam = "recur.optim.Adam",
  adamw = "recur.optim.AdamW",
  rmsprop = "recur.optim.RMSprop",
  adagrad = "recur.optim.Adagrad",
}
local with_momentum = { sgd = true, rmsprop = true }

-- The known names, sorted, for error messages and for a command's --help.
create.names = {}
for n in pairs(classes) do create.names[#create.names + 1] = n end
table.sort(create.names)

function create.create(name, model, opts)
  local module = classes[name]
  if module == nil then
    error(string.format("optim.create: unknown optimizer %s (known: %s)",
      type(name) == "string" and string.format("'%s'", name) or tostring(name),
      table.concat(create.names, ", ")), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("optim.create: options must be a table, got " .. type(opts), 2)
  end
  if opts ~= nil and opts.momentum ~= nil and not with_momentum[name] then
    error(string.format("optim.create: momentum applies to sgd and rmsprop, not to %s", name), 2)
  end
  return require(module)(model, opts)
end

return create
