#include "libtorch/model/factory/build_model.h"

#include "libtorch/model/rnn/seq2seq.h"
#include "libtorch/model/transformer/transformer.h"

namespace s2s {
namespace {

template <class Impl>
NmtModel family_model(const ModelConfig& config, const Vocabularies& vocabs, bool initialize) {
  auto model = std::make_shared<Impl>(config, vocabs);
  if (initialize) init_parameters(*model);
  return NmtModel(std::shared_ptr<NmtModelImpl>(std::move(model)));
}

NmtModel model_of_type(const ModelConfig& config, const Vocabularies& vocabs, bool initialize) {
  switch (config.type) {
    case ModelType::kTransformer:
      return family_model<TransformerImpl>(config, vocabs, initialize);
    case ModelType::kRnn:
      break;
  }
  return family_model<Seq2SeqImpl>(config, vocabs, initialize);
}

}  // namespace

NmtModel make_model(const ModelConfig& config, const Vocabularies& vocabs) {
  return model_of_type(config, vocabs, false);
}

NmtModel build_model(const ModelConfig& config, const Vocabularies& vocabs) {
  return model_of_type(config, vocabs, true);
}

}  // namespace s2s
