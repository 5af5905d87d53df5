/* Option value parsing: accepted spellings, malformed and out-of-range values. */
#include <criterion/criterion.h>

#include "options.h"

Test(options, booleans) {
    bool b;
    const char *yes[] = {"1", "yes", "YES", "true", "On"};
    const char *no[] = {"0", "no", "False", "off"};
    for (unsigned i = 0; i < 5; i++) cr_assert(rsb_parse_bool(yes[i], &b) && b, "%s", yes[i]);
    for (unsigned i = 0; i < 4; i++) cr_assert(rsb_parse_bool(no[i], &b) && !b, "%s", no[i]);
    const char *bad[] = {"", "2", "yess", "tru", " 1", "1 "};
    for (unsigned i = 0; i < 6; i++) cr_assert_not(rsb_parse_bool(bad[i], &b), "'%s'", bad[i]);
}

Test(options, integers) {
    long v;
    cr_assert(rsb_parse_int("0", -1, 100, &v) && v == 0);
    cr_assert(rsb_parse_int("-1", -1, 100, &v) && v == -1);
    cr_assert(rsb_parse_int("100", -1, 100, &v) && v == 100);
    cr_assert_not(rsb_parse_int("101", -1, 100, &v));
    cr_assert_not(rsb_parse_int("-2", -1, 100, &v));
    cr_assert_not(rsb_parse_int("", -1, 100, &v));
    cr_assert_not(rsb_parse_int("-", -1, 100, &v));
    cr_assert_not(rsb_parse_int("12a", -1, 100, &v));
    cr_assert_not(rsb_parse_int("99999999999999999999999", -1, 100, &v));
}
