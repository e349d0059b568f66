#include "util/version.h"

namespace s2s {

const char* version() {
  return S2S_VERSION;
}

}  // namespace s2s
