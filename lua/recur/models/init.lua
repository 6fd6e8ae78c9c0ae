-- recur.models: whole models built from recur.nn for the common tasks.
return {
  LanguageModel = require "recur.models.LanguageModel",
}
