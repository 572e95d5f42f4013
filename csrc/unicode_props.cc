#include "unicode_props.h"

namespace wwm {
namespace tables {
// Generated at build time by csrc/gen_unicode_tables.py (see setup.py): kStage1, kStage2,
// kRecords, kMapData and WWM_UNIDATA_VERSION.
#include "unicode_tables.inc"
}  // namespace tables

const char* UnidataVersion() { return WWM_UNIDATA_VERSION; }

}  // namespace wwm
