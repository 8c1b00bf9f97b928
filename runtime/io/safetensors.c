/* placeholder: being written */
#include "spartan/status.h"
