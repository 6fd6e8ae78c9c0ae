-- recur.models: whole models built from recur.nn for the common tasks.
return {
  LanguageModel = require "recur.models.LanguageModel",
  Seq2Seq = require "recur.models.Seq2Seq",
  Forecaster = require "recur.models.Forecaster",
  SequenceClassifier = require "recur.models.SequenceClassifier",
  ConditionedGenerator = require "recur.models.ConditionedGenerator",
  scheduled = require "recur.models.scheduled",
}
