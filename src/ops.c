/* ops.c: the six operations of the FNDTN auth API, as data.
 *
 * One row per operation: what request.c builds and what response.c expects.
 * Adding an operation is adding a row; no code is written per operation. */
#include <string.h>
#include "tfauth.h"

#define BODY_STR(name, flags) { name, name, TF_IN_BODY, TF_STRING, flags }
#define HEADER(name, wire, flags) { name, wire, TF_IN_HEADER, TF_STRING, flags }
#define REQ TF_REQUIRED
#define SECRET (TF_REQUIRED | TF_SECRET)

const tf_op tf_ops[] = {
    { "login", { "login_user_api_iam_login_post", NULL },
      "POST", "/api/iam/login", 0, TF_SHAPE_TOKEN,
      { BODY_STR("user", REQ), BODY_STR("password", SECRET),
        { "remember_me", "remember_me", TF_IN_BODY, TF_BOOLEAN, 0 } } },

    { "refresh", { "refresh_token_api_iam_refresh_post", NULL },
      "POST", "/api/iam/refresh", 0, TF_SHAPE_TOKEN,
      { BODY_STR("refresh_token", SECRET) } },

    { "logout", { "logout_user_api_iam_logout_post", NULL },
      "POST", "/api/iam/logout", 0, TF_SHAPE_OK,
      { BODY_STR("refresh_token", SECRET) } },

    { "reset_password", { "reset_password_api_iam_password_reset_post", NULL },
      "POST", "/api/iam/password/reset", 0, TF_SHAPE_OK,
      { { "username", "username", TF_IN_QUERY, TF_STRING, REQ } } },

    { "change_password", { "change_password_api_iam_password_change_post", NULL },
      "POST", "/api/iam/password/change", 1, TF_SHAPE_OK,
      { HEADER("x_org", "X-Org", REQ), BODY_STR("current_password", SECRET),
        BODY_STR("new_password", SECRET), HEADER("x_org_override", "X-Org-Override", 0) } },

    /* The SDK's method name and the OpenAPI operationId differ by one '_'. */
    { "admin_change_password",
      { "admin_change_user_password_api_iam_admin_user_user_id_password_post",
        "admin_change_user_password_api_iam_admin_user__user_id__password_post" },
      "POST", "/api/iam/admin/user/{user_id}/password", 1, TF_SHAPE_OK,
      { { "user_id", "user_id", TF_IN_PATH, TF_STRING, REQ | TF_SEGMENT },
        HEADER("x_org", "X-Org", REQ), BODY_STR("new_password", SECRET),
        HEADER("x_org_override", "X-Org-Override", 0) } },
};

const size_t tf_op_count = sizeof tf_ops / sizeof tf_ops[0];

const tf_op *tf_op_find(const char *name) {
    size_t i, a;
    for (i = 0; i < tf_op_count; i++) {
        if (strcmp(tf_ops[i].name, name) == 0) return &tf_ops[i];
        for (a = 0; a < 2 && tf_ops[i].aliases[a]; a++)
            if (strcmp(tf_ops[i].aliases[a], name) == 0) return &tf_ops[i];
    }
    return NULL;
}

/* Not an operation: the row of a GET that reads a JSON document at an
 * absolute URL (fetch.c), named for its errors, e.g. "jwks.fetch". */
void tf_op_get(tf_op *op, const char *name) {
    memset(op, 0, sizeof *op);
    op->name = name;
    op->method = "GET";
    op->path = "";
    op->shape = TF_SHAPE_OK;
}
