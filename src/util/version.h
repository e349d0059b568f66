// The toolkit's version (CMake's PROJECT_VERSION), for --version and the head of train.log.
#pragma once

namespace s2s {

const char* version();

}  // namespace s2s
