-- recur.data: text in, ids and batches out.
--
-- Token ids are integers 1..V everywhere (Lua's convention; the embedding layer takes
-- them as they are) and batches are int64 tensors of them. Id 0 is never a token (the
-- n-gram model uses it as its start symbol).
--
--   read_text(path), read_splits{path=, val_frac=, test_frac=} / {train=, val=, test=}
--   read_pairs(path) -> sources, targets (`source<TAB>target` lines)
--   read_labeled(path) -> labels, texts (`label<TAB>text` lines)
--   read_csv(path) -> values (N,D) float64 tensor, column names (header optional)
--   split(seq, {val_frac=0.05, test_frac=0})   train | val | test, in order
--   CharTokenizer (UTF-8 code points), WordTokenizer (<pad> <unk> <s> </s>), Vocab
--   LMBatcher         token stream -> (T,B) chunks x, y for truncated BPTT
--   SentenceBatcher   sequences -> padded, length-bucketed (T,B) batches with masks
--   Shard             one rank's streams of each batch (data-parallel training)
--   Drawn             batches drawn by a function (generated data), per_epoch a pass
--   NGram             add-k n-gram baseline: prob, loss (nats/id), perplexity
--   Rng               the seeded splitmix64 generator behind the shuffles
--   series            real-valued series: tensor, Scaler (standardisation), windows,
--                     Batcher ((T,B,D) chunks, targets one step ahead), naive baselines
local text = require("recur.data.text")
local tabular = require("recur.data.tabular")

return {
  read_text = text.read_text,
  read_splits = text.read_splits,
  read_pairs = tabular.read_pairs,
  read_labeled = tabular.read_labeled,
  read_csv = tabular.read_csv,
  split = require("recur.data.split").split,
  Vocab = require("recur.data.vocab"),
  CharTokenizer = require("recur.data.char_tokenizer"),
  WordTokenizer = require("recur.data.word_tokenizer"),
  LMBatcher = require("recur.data.lm_batcher"),
  SentenceBatcher = require("recur.data.sentence_batcher"),
  Shard = require("recur.data.shard"),
  Drawn = require("recur.data.drawn"),
  NGram = require("recur.data.ngram"),
  Rng = require("recur.data.shuffle"),
  series = require("recur.data.series"),
}
