// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* placeholder while being written */
#include "internal.h"
