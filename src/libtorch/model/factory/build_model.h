// The one place that knows every model family: builds the model that `model.type` names.
#pragma once

#include "libtorch/model/nmt_model.h"

namespace s2s {

// A model of config.type with parameters as constructed (to be overwritten by loaded weights).
NmtModel make_model(const ModelConfig& config, const Vocabularies& vocabs);

// A model of config.type with freshly initialized parameters (seeded by the caller).
NmtModel build_model(const ModelConfig& config, const Vocabularies& vocabs);

}  // namespace s2s
