//! One test per validation rule: a copy of the minimal fixture with one thing broken, and the exact
//! diagnostic (file, entry, message) it must produce.

use rustydb_codegen::CodegenError;

use super::support::{Scratch, diag};

const ROUTES: &str = "routes/items.yaml";
const TYPES: &str = "types/items.yaml";
const EVENTS: &str = "events/items.yaml";
const SUBS: &str = "subscriptions/items.yaml";
const WS: &str = "websockets.yaml";
const API: &str = "api.yaml";

/// An operation appended to the minimal routes file.
fn extra_op(id: &str, method: &str, path: &str, more: &str) -> String {
    format!(
        "  - id: {id}\n    method: {method}\n    path: {path}\n    summary: Extra\n    \
         permission: items:write\n    response: {{ status: 200, description: Ok, $ref: Item }}\n{more}"
    )
}

/// A message appended to the minimal events file.
fn extra_message(body: &str) -> String {
    format!("  - {}\n", body.trim().replace('\n', "\n    "))
}

// ---------------------------------------------------------------- api.yaml: permissions and roles

#[test]
fn reserved_permission_name() {
    let s = Scratch::minimal();
    s.edit(
        API,
        "  items:read: Read items\n",
        "  items:read: Read items\n  public: Anyone\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            API,
            "permission public",
            "`public` and `authenticated` are reserved access levels"
        )]
    );
}

#[test]
fn malformed_permission_names() {
    let s = Scratch::minimal();
    s.edit(
        API,
        "  items:read: Read items\n",
        "  items:read: Read items\n  Items:Admin: Capitals\n  items: No level\n  _:_: Underscores only\n",
    );
    let message = "a permission is `area:level` in lowercase letters, e.g. `database:read`";
    assert_eq!(
        s.invalid(),
        [
            diag(API, "permission Items:Admin", message),
            diag(API, "permission _:_", message),
            diag(API, "permission items", message),
        ]
    );
}

#[test]
fn permissions_colliding_as_enum_variants() {
    let s = Scratch::minimal();
    s.edit(
        API,
        "  items:read: Read items\n",
        "  items:read: Read items\n  items_read:all: Same variant\n  item:s_read: Also the same\n",
    );
    // `items:read`, `items_read:all` and `item:s_read` become ItemsRead, ItemsReadAll, ItemSRead:
    // no collision; `items:read_all` would be ItemsReadAll.
    assert!(s.load().is_ok());
    s.edit(
        API,
        "  item:s_read: Also the same\n",
        "  item:s_read: Also the same\n  items:read_all: Collides\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            API,
            "permission items_read:all",
            "permission collides with `items:read_all` (both become `Permission::ItemsReadAll`)"
        )]
    );
}

#[test]
fn role_with_unknown_permission() {
    let s = Scratch::minimal();
    s.edit(
        API,
        "permissions: [items:read]\n",
        "permissions: [items:read, items:delete]\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            API,
            "role reader",
            "unknown permission `items:delete`"
        )]
    );
}

#[test]
fn no_security_scheme() {
    let s = Scratch::minimal();
    let text = std::fs::read_to_string(s.path().join(API)).unwrap();
    let head = text.split("security_schemes:").next().unwrap();
    s.write(API, &format!("{head}security_schemes: {{}}\n"));
    assert_eq!(
        s.invalid(),
        [diag(
            API,
            "security_schemes",
            "at least one security scheme is needed for protected operations"
        )]
    );
}

// ---------------------------------------------------------------------------------- named types

#[test]
fn duplicate_type_name_across_files() {
    let s = Scratch::minimal();
    s.write("types/extra.yaml", "types:\n  Item:\n    type: string\n");
    // Files are read in name order: extra.yaml declares it first.
    assert_eq!(
        s.invalid(),
        [diag(TYPES, "type Item", "duplicate type name")]
    );
}

#[test]
fn type_names_colliding_after_conversion() {
    let s = Scratch::minimal();
    s.append(
        TYPES,
        "  foo_bar:\n    type: string\n  FooBar:\n    type: integer\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            TYPES,
            "type FooBar",
            "type name collides with `foo_bar` (both become Rust `FooBar`)"
        )]
    );
}

#[test]
fn type_names_colliding_through_a_leading_digit() {
    // typify names `2fa` X2fa, so `X2fa` is taken.
    let s = Scratch::minimal();
    s.append(
        TYPES,
        "  2fa:\n    type: string\n  X2fa:\n    type: string\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            TYPES,
            "type X2fa",
            "type name collides with `2fa` (both become Rust `X2fa`)"
        )]
    );
}

#[test]
fn unknown_type_reference_in_a_property() {
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "      items:\n        type: array\n        items:\n          $ref: Item\n",
        "      items:\n        type: array\n        items:\n          $ref: Itm\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(TYPES, "type ItemList", "unknown type reference `Itm`")]
    );
}

#[test]
fn unsupported_schema_keywords() {
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "        minLength: 1\n",
        "        minLength: 1\n        pattern: \"^[a-z]+$\"\n",
    );
    s.edit(
        TYPES,
        "    description: What an item is.\n",
        "    description: What an item is.\n    oneOf: []\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                TYPES,
                "type Item",
                "`Item.name`: unsupported schema keyword `pattern`"
            ),
            diag(
                TYPES,
                "type ItemKind",
                "`ItemKind`: unsupported schema keyword `oneOf`"
            ),
        ]
    );
}

#[test]
fn unsupported_type_and_format() {
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "      id:\n        type: string\n",
        "      id:\n        type: text\n",
    );
    s.edit(
        TYPES,
        "      created_at:\n        type: string\n        format: date-time\n",
        "      created_at:\n        type: string\n        format: uuid\n",
    );
    s.edit(
        TYPES,
        "      total:\n        type: integer\n",
        "      total:\n        type: [integer, string]\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                TYPES,
                "type Item",
                "`Item.created_at`: unsupported format `uuid`"
            ),
            diag(
                TYPES,
                "type Item",
                "`Item.id`: type `\"text\"` is not one of [\"string\", \"integer\", \"number\", \
                 \"boolean\", \"object\", \"array\", \"null\"] (or [T, \"null\"])"
            ),
            diag(
                TYPES,
                "type ItemList",
                "`ItemList.total`: type `[\"integer\",\"string\"]` is not one of [\"string\", \
                 \"integer\", \"number\", \"boolean\", \"object\", \"array\", \"null\"] (or [T, \
                 \"null\"])"
            ),
        ]
    );
}

#[test]
fn format_without_type() {
    // typify cannot type a lone `format` (it panics); the validator says so first.
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "      created_at:\n        type: string\n        format: date-time\n",
        "      created_at:\n        format: date-time\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            TYPES,
            "type Item",
            "`Item.created_at`: `format` needs a `type`"
        )]
    );
}

#[test]
fn required_names_a_missing_property() {
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "    required: [items, total]\n",
        "    required: [items, total, count]\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            TYPES,
            "type ItemList",
            "`ItemList`: required `\"count\"` is not a property"
        )]
    );
}

#[test]
fn ref_with_siblings_and_ref_that_is_not_a_name() {
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "      kind:\n        $ref: ItemKind\n      quantity:",
        "      kind:\n        $ref: ItemKind\n        type: string\n      quantity:",
    );
    s.edit(
        TYPES,
        "      item:\n        $ref: Item\n",
        "      item:\n        $ref: [Item]\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                TYPES,
                "type ItemChange",
                "`ItemChange.item`: $ref names a type"
            ),
            diag(
                TYPES,
                "type ItemCreate",
                "`ItemCreate.kind`: $ref allows only `description` beside it"
            ),
        ]
    );
}

#[test]
fn schema_that_is_not_a_mapping() {
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "      id:\n        type: string\n",
        "      id: string\n",
    );
    s.edit(
        TYPES,
        "    required: [items, total]\n    properties:\n",
        "    required: []\n    properties: [items, total]\n    x:\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(TYPES, "type Item", "`Item.id`: a schema is a mapping"),
            diag(
                TYPES,
                "type ItemList",
                "`ItemList`: properties is a mapping"
            ),
            diag(
                TYPES,
                "type ItemList",
                "`ItemList`: unsupported schema keyword `x`"
            ),
        ]
    );
}

#[test]
fn properties_that_become_the_same_rust_field() {
    let s = Scratch::minimal();
    s.append(
        TYPES,
        "  Paging:\n    type: object\n    properties:\n      page-size:\n        type: integer\n      \
         page_size:\n        type: integer\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            TYPES,
            "type Paging",
            "`Paging`: properties `page-size` and `page_size` become the same Rust field"
        )]
    );
}

#[test]
fn an_inline_enum_named_like_a_declared_type() {
    let s = Scratch::minimal();
    s.append(
        TYPES,
        "  Begin:\n    type: object\n    properties:\n      mode:\n        type: string\n        \
         enum: [DEFERRED, IMMEDIATE]\n  BeginMode:\n    type: string\n    enum: [A, B]\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            TYPES,
            "type Begin",
            "`Begin.mode`: its inline enum is named `BeginMode` in Rust, which is also a declared \
             type; declare the enum as a type and $ref it, or rename the type"
        )]
    );
}

#[test]
fn missing_error_body_type() {
    let s = Scratch::minimal();
    s.edit(
        TYPES,
        "  ErrorBody:\n    description: The body of every error response.\n",
        "  ErrorBodi:\n    description: The body of every error response.\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            API,
            "types",
            "type `ErrorBody` is required: every error response carries it"
        )]
    );
}

#[test]
fn error_body_is_not_needed_without_routes() {
    let s = Scratch::minimal();
    s.remove(ROUTES);
    s.edit(TYPES, "  ErrorBody:\n", "  NotErrorBody:\n");
    // Without routes, a GraphQL field cannot mirror one.
    s.edit(
        "subscriptions/ops.yaml",
        "    rest: create_item\n",
        "    permission: items:write\n",
    );
    s.edit(
        "subscriptions/ops.yaml",
        "    rest: get_item\n",
        "    permission: items:read\n",
    );
    assert!(s.load().is_ok());
}

// ------------------------------------------------------------------------------------ operations

#[test]
fn duplicate_operation_id() {
    let s = Scratch::minimal();
    s.append(
        ROUTES,
        &extra_op("get_item", "PUT", "/api/v1/items/extra", ""),
    );
    assert_eq!(
        s.invalid(),
        [diag(ROUTES, "operation get_item", "duplicate operation id")]
    );
}

#[test]
fn operation_ids_colliding_after_case_conversion() {
    let s = Scratch::minimal();
    s.append(
        ROUTES,
        &extra_op("get__item", "PUT", "/api/v1/items/extra", ""),
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation get__item",
            "operation id collides with `get_item` (both become `get_item`)"
        )]
    );
}

#[test]
fn camel_case_operation_id_is_refused_and_collides() {
    let s = Scratch::minimal();
    s.append(
        ROUTES,
        &extra_op("getItem", "PUT", "/api/v1/items/extra", ""),
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation getItem",
                "an operation id is lowercase snake_case"
            ),
            diag(
                ROUTES,
                "operation getItem",
                "operation id collides with `get_item` (both become `get_item`)"
            ),
        ]
    );
}

#[test]
fn duplicate_method_and_path() {
    let s = Scratch::minimal();
    s.append(
        ROUTES,
        &extra_op("list_items_again", "GET", "/api/v1/items", ""),
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation list_items_again",
            "duplicate route GET /api/v1/items (also operation `list_items`)"
        )]
    );
}

#[test]
fn same_route_with_other_parameter_names() {
    // axum refuses `/items/{item_id}` and `/items/{id}` side by side (a panic at startup).
    let s = Scratch::minimal();
    s.append(
        ROUTES,
        &extra_op(
            "replace_item",
            "PUT",
            "/api/v1/items/{id}",
            "    path_params:\n      id: { type: string }\n",
        ),
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation replace_item",
            "path /api/v1/items/{id} is the same route as /api/v1/items/{item_id}: only parameter \
             names differ"
        )]
    );
}

#[test]
fn path_of_another_subsystem_and_subsystem_declared_twice() {
    let s = Scratch::minimal();
    s.write(
        "routes/other.yaml",
        &format!(
            "subsystem: other\ndescription: Other\noperations:\n{}",
            extra_op("put_items", "PUT", "/api/v1/items", "")
        ),
    );
    s.write(
        "routes/zz.yaml",
        &format!(
            "subsystem: other\ndescription: Again\noperations:\n{}",
            extra_op("patch_more", "PATCH", "/api/v1/more", "")
        ),
    );
    // items.yaml is read before other.yaml, which is read before zz.yaml.
    assert_eq!(
        s.invalid(),
        [
            diag(
                "routes/other.yaml",
                "operation put_items",
                "path /api/v1/items belongs to subsystem `items`"
            ),
            diag(
                "routes/zz.yaml",
                "subsystem other",
                "subsystem already declared in routes/other.yaml"
            ),
        ]
    );
}

#[test]
fn subsystem_names() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "subsystem: items\n", "subsystem: Items\n");
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "subsystem Items",
            "a subsystem name is lowercase snake_case"
        )]
    );
    for reserved in [
        "types",
        "events",
        "rt",
        "websocket_endpoints",
        "websockets",
        "web_socket",
    ] {
        let s = Scratch::minimal();
        s.edit(
            ROUTES,
            "subsystem: items\n",
            &format!("subsystem: {reserved}\n"),
        );
        assert_eq!(
            s.invalid(),
            [diag(
                ROUTES,
                &format!("subsystem {reserved}"),
                "this subsystem name is taken by the generated Rust; choose another"
            )],
            "{reserved}"
        );
    }
}

#[test]
fn path_parameter_not_declared() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "    path_params:\n      item_id: { type: string, description: The item's id }\n    \
         response: { status: 200",
        "    response: { status: 200",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation get_item",
            "path parameter `item_id` not declared in path_params"
        )]
    );
}

#[test]
fn path_params_declaring_a_parameter_not_in_the_path() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "    permission: items:write\n    body:",
        "    permission: items:write\n    path_params:\n      item_id: { type: string }\n    body:",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation create_item",
            "path_params declares `item_id`, which is not in the path"
        )]
    );
}

#[test]
fn bad_paths() {
    let s = Scratch::minimal();
    s.append(ROUTES, &extra_op("a", "PUT", "/v1/items/x", ""));
    s.append(ROUTES, &extra_op("b", "PUT", "/api/v1/Items", ""));
    s.append(ROUTES, &extra_op("c", "PUT", "/api//c", ""));
    s.append(ROUTES, &extra_op("d", "PUT", "/api/v1/x{y}", ""));
    s.append(
        ROUTES,
        &extra_op(
            "e",
            "PUT",
            "/api/v1/e/{itemId}",
            "    path_params:\n      itemId: { type: string }\n",
        ),
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation a",
                "path `/v1/items/x` does not start with /api/"
            ),
            diag(
                ROUTES,
                "operation b",
                "bad path segment `Items` in `/api/v1/Items`"
            ),
            diag(ROUTES, "operation c", "bad path segment `` in `/api//c`"),
            diag(
                ROUTES,
                "operation d",
                "bad path segment `x{y}` in `/api/v1/x{y}`"
            ),
            diag(
                ROUTES,
                "operation e",
                "path parameter `itemId` is not snake_case"
            ),
        ]
    );
}

#[test]
fn parameter_in_path_and_query() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "      item_id: { type: string, description: The item's id }\n    response: { status: 200",
        "      item_id: { type: string, description: The item's id }\n    query:\n      item_id: { \
         type: string }\n    response: { status: 200",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation get_item",
            "`item_id` is both a path and a query parameter"
        )]
    );
}

#[test]
fn operation_without_permission() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "    permission: authenticated\n", "");
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation list_items",
            "operation without permission (name one, or `public` / `authenticated`)"
        )]
    );
}

#[test]
fn operation_with_unknown_permission() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "    permission: items:read\n",
        "    permission: items:list\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation get_item",
            "unknown permission `items:list`"
        )]
    );
}

#[test]
fn unknown_method() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "    method: DELETE\n", "    method: delete\n");
    s.append(ROUTES, &extra_op("fetch", "FETCH", "/api/v1/fetch", ""));
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation delete_item",
                "unknown method `delete` (GET, POST, PUT, PATCH or DELETE)"
            ),
            diag(
                ROUTES,
                "operation fetch",
                "unknown method `FETCH` (GET, POST, PUT, PATCH or DELETE)"
            ),
        ]
    );
}

#[test]
fn non_2xx_response_status() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "status: 201", "status: 302");
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation create_item",
            "response status 302 is not a success status"
        )]
    );
}

#[test]
fn response_204_with_a_body() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "{ status: 204, description: Deleted }",
        "{ status: 204, description: Deleted, $ref: Item }",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation delete_item",
            "a 204 response has no body"
        )]
    );
}

/// A text response (`GET /metrics`) may live outside /api/; its media type must be `text/*`,
/// it has no `$ref`, and a response without either is a 204.
#[test]
fn text_responses() {
    let s = Scratch::minimal();
    let text = |id: &str, path: &str, response: &str| {
        format!(
            "  - id: {id}\n    method: GET\n    path: {path}\n    summary: Extra\n    \
             permission: items:read\n    response: {response}\n"
        )
    };
    s.append(
        ROUTES,
        &text(
            "scrape",
            "/metrics",
            "{ status: 200, description: Ok, media_type: text/plain }",
        ),
    );
    s.append(
        ROUTES,
        &text(
            "binary",
            "/api/v1/binary",
            "{ status: 200, description: Ok, media_type: application/octet-stream }",
        ),
    );
    s.append(
        ROUTES,
        &text(
            "both",
            "/api/v1/both",
            "{ status: 200, description: Ok, media_type: text/csv, $ref: Item }",
        ),
    );
    s.append(
        ROUTES,
        &text(
            "neither",
            "/api/v1/neither",
            "{ status: 200, description: Ok }",
        ),
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation binary",
                "response media_type `application/octet-stream` is not a text/* type"
            ),
            diag(ROUTES, "operation both", "a text response has no $ref"),
            diag(
                ROUTES,
                "operation neither",
                "a response without a body ($ref or media_type) is a 204"
            ),
        ]
    );
}

#[test]
fn get_with_a_body() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "    permission: authenticated\n",
        "    permission: authenticated\n    body: { $ref: ItemCreate }\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation list_items",
            "a GET operation has no body"
        )]
    );
}

#[test]
fn unknown_type_reference_in_body_and_response() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "$ref: ItemCreate", "$ref: ItemCreation");
    s.edit(ROUTES, "$ref: ItemList", "$ref: Items");
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation create_item",
                "unknown type reference `ItemCreation`"
            ),
            diag(
                ROUTES,
                "operation list_items",
                "unknown type reference `Items`"
            ),
        ]
    );
}

#[test]
fn error_status_outside_4xx_5xx() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "errors: [409]", "errors: [409, 302, 600]");
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation create_item",
                "error status 302 is not a 4xx or 5xx status"
            ),
            diag(
                ROUTES,
                "operation create_item",
                "error status 600 is not a 4xx or 5xx status"
            ),
        ]
    );
}

#[test]
fn request_example_without_a_body() {
    let s = Scratch::minimal();
    s.append(
        ROUTES,
        &extra_op(
            "touch_item",
            "PUT",
            "/api/v1/touch",
            "    examples:\n      request: { name: x }\n",
        ),
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation touch_item",
            "a request example needs a body"
        )]
    );
}

// ------------------------------------------------------------------------------------ parameters

#[test]
fn parameter_with_unknown_key() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "minimum: 1, maximum: 500",
        "minimun: 1, maximum: 500",
    );
    let diags = s.invalid();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(
        (diags[0].file.as_str(), diags[0].entry.as_str()),
        (ROUTES, "operation list_items")
    );
    assert!(
        diags[0]
            .message
            .starts_with("parameter `limit`: unknown field `minimun`, expected one of"),
        "{}",
        diags[0].message
    );
}

#[test]
fn parameter_types_and_constraints() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "      include_archived: { type: boolean, description: Include archived items, default: false }\n",
        "      include_archived: { type: boolean, enum: [yes], minimum: 0 }\n      fields: { type: \
         array }\n",
    );
    s.edit(
        ROUTES,
        "      item_id: { type: string, description: The item's id }\n    response: { status: 200",
        "      item_id: { type: string, default: x }\n    response: { status: 200",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation get_item",
                "path parameter `item_id` cannot have a default"
            ),
            diag(
                ROUTES,
                "operation list_items",
                "parameter `fields` has type `array`; parameters are string, integer, number or \
                 boolean"
            ),
            diag(
                ROUTES,
                "operation list_items",
                "parameter `include_archived`: enum is for string parameters"
            ),
            diag(
                ROUTES,
                "operation list_items",
                "parameter `include_archived`: minimum/maximum are for integer parameters"
            ),
        ]
    );
}

#[test]
fn parameters_colliding_after_conversion() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "      limit: {",
        "      page-size: { type: integer }\n      page_size: { type: integer }\n      limit: {",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            ROUTES,
            "operation list_items",
            "parameter `page_size` collides with `page-size`"
        )]
    );
}

#[test]
fn parameter_names_without_a_rust_name() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "      limit: {",
        "      _: { type: string }\n      \"--\": { type: string }\n      limit: {",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation list_items",
                "parameter `--` has no letter or digit to make a Rust name of"
            ),
            diag(
                ROUTES,
                "operation list_items",
                "parameter `_` has no letter or digit to make a Rust name of"
            ),
        ]
    );
}

#[test]
fn parameter_default_of_the_wrong_type() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "default: 50", "default: fifty");
    s.edit(ROUTES, "default: false", "default: \"false\"");
    s.edit(WS, "minimum: 1 }", "minimum: 1, default: 1.5 }");
    assert_eq!(
        s.invalid(),
        [
            diag(
                ROUTES,
                "operation list_items",
                "parameter `include_archived`: the default is not of type `boolean`"
            ),
            diag(
                ROUTES,
                "operation list_items",
                "parameter `limit`: the default is not of type `integer`"
            ),
            diag(
                WS,
                "endpoint /api/v1/ws/items",
                "parameter `interval`: the default is not of type `integer`"
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------- events

#[test]
fn event_family_name_permission_and_messages() {
    let s = Scratch::minimal();
    s.write(
        "events/other.yaml",
        "family: Other-Family\ndescription: x\npermission: items:admin\nmessages: []\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                "events/other.yaml",
                "family Other-Family",
                "a family carries at least one message"
            ),
            diag(
                "events/other.yaml",
                "family Other-Family",
                "a family name is lowercase snake_case"
            ),
            diag(
                "events/other.yaml",
                "family Other-Family",
                "unknown permission `items:admin`"
            ),
        ]
    );
}

#[test]
fn event_family_that_is_public() {
    let s = Scratch::minimal();
    s.edit(EVENTS, "permission: items:read\n", "permission: public\n");
    assert_eq!(
        s.invalid(),
        [diag(
            EVENTS,
            "family items",
            "event streams need credentials; use `authenticated` or a permission"
        )]
    );
}

#[test]
fn a_protocol_family_cannot_be_durable() {
    let s = Scratch::minimal();
    s.edit(
        EVENTS,
        "permission: items:read\n",
        "permission: items:read\nprotocol: true\ndurable: true\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            EVENTS,
            "family items",
            "protocol messages are never published, so they cannot be durable"
        )]
    );
}

#[test]
fn duplicate_family_and_message_type() {
    let s = Scratch::minimal();
    s.write(
        "events/more.yaml",
        "family: items\ndescription: x\npermission: authenticated\nmessages:\n  - message_type: \
         item_stats\n    encoding: flat\n    fields: {}\n",
    );
    // items.yaml is read before more.yaml, which gets the diagnostics.
    let more = "events/more.yaml";
    assert_eq!(
        s.invalid(),
        [
            diag(more, "family items", "duplicate event family"),
            diag(more, "message item_stats", "duplicate message_type"),
            diag(
                more,
                "message item_stats",
                "payload type `ItemStats` collides with `item_stats`"
            ),
        ]
    );
}

#[test]
fn message_type_not_snake_case() {
    let s = Scratch::minimal();
    s.edit(
        EVENTS,
        "message_type: item_stats",
        "message_type: itemStats",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            EVENTS,
            "message itemStats",
            "a message_type is lowercase snake_case"
        )]
    );
}

#[test]
fn unknown_event_encoding() {
    let s = Scratch::minimal();
    s.edit(EVENTS, "encoding: flat", "encoding: internally_tagged");
    assert_eq!(
        s.invalid(),
        [diag(
            EVENTS,
            "message item_stats",
            "unknown encoding `internally_tagged` (externally_tagged, event_type_tagged or flat)"
        )]
    );
}

#[test]
fn flat_message_with_variants() {
    let s = Scratch::minimal();
    s.append(
        EVENTS,
        &extra_message("message_type: odd\nencoding: flat\nvariants:\n  A: {}"),
    );
    s.append(
        EVENTS,
        &extra_message("message_type: odder\nencoding: flat\nfields: {}\nvariants:\n  B: {}"),
    );
    s.append(
        EVENTS,
        &extra_message("message_type: oddest\nencoding: flat"),
    );
    let message = "a flat message declares `fields` and no `variants`";
    assert_eq!(
        s.invalid(),
        [
            diag(EVENTS, "message odd", message),
            diag(EVENTS, "message odder", message),
            diag(EVENTS, "message oddest", message),
        ]
    );
}

#[test]
fn tagged_message_with_fields() {
    let s = Scratch::minimal();
    s.append(
        EVENTS,
        &extra_message("message_type: odd\nencoding: externally_tagged\nfields: {}"),
    );
    s.append(
        EVENTS,
        &extra_message("message_type: odder\nencoding: event_type_tagged\nvariants: {}"),
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                EVENTS,
                "message odd",
                "a tagged message declares `variants` and no `fields`"
            ),
            diag(
                EVENTS,
                "message odder",
                "a tagged message declares at least one variant"
            ),
        ]
    );
}

#[test]
fn bad_variant_names_and_shapes() {
    let s = Scratch::minimal();
    s.append(
        EVENTS,
        &extra_message(
            "message_type: odd\nencoding: externally_tagged\nvariants:\n  lower_case: {}\n  \
             HTTPError: {}\n  \"\": {}\n  NotAMap: [a]",
        ),
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                EVENTS,
                "message odd",
                "variant `HTTPError` is not UpperCamelCase"
            ),
            diag(
                EVENTS,
                "message odd",
                "variant `NotAMap` maps field names to schemas"
            ),
            diag(EVENTS, "message odd", "variant `` is not UpperCamelCase"),
            diag(
                EVENTS,
                "message odd",
                "variant `lower_case` is not UpperCamelCase"
            ),
        ]
    );
}

#[test]
fn variant_named_like_a_type() {
    let s = Scratch::minimal();
    s.edit(EVENTS, "      Deleted:\n", "      Item:\n");
    assert_eq!(
        s.invalid(),
        [diag(
            EVENTS,
            "message item_changed",
            "payload type `Item` collides with `Item`"
        )]
    );
}

#[test]
fn event_field_schemas_are_checked() {
    let s = Scratch::minimal();
    s.edit(EVENTS, "        $ref: ItemKind\n", "        $ref: Kind\n");
    s.edit(
        EVENTS,
        "      count:\n",
        "      Count:\n        type: integer\n      count:\n",
    );
    s.edit(
        EVENTS,
        "        viewer:\n          type: [string, \"null\"]\n",
        "        viewer:\n          type: [string, \"null\"]\n          nullable: true\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                EVENTS,
                "message item_activity",
                "`viewer`: unsupported schema keyword `nullable`"
            ),
            diag(
                EVENTS,
                "message item_stats",
                "fields `Count` and `count` become the same Rust field"
            ),
            diag(
                EVENTS,
                "message item_stats",
                "unknown type reference `Kind`"
            ),
        ]
    );
}

// --------------------------------------------------------------------------------- subscriptions

#[test]
fn subscription_name_and_duplicates() {
    let s = Scratch::minimal();
    let text = std::fs::read_to_string(s.path().join(SUBS)).unwrap();
    let entry = text.trim_start_matches("subscriptions:\n");
    s.append(SUBS, entry);
    s.append(
        SUBS,
        &entry.replace("name: itemChanged", "name: item_changed"),
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                SUBS,
                "subscription itemChanged",
                "duplicate subscription name"
            ),
            diag(
                SUBS,
                "subscription item_changed",
                "a subscription name is lowerCamelCase"
            ),
        ]
    );
}

#[test]
fn fields_mirroring_a_rest_operation() {
    const OPS: &str = "subscriptions/ops.yaml";
    let s = Scratch::minimal();
    s.edit(OPS, "    rest: create_item\n", "    rest: make_item\n");
    s.edit(
        OPS,
        "  - name: deleteItem\n    description: Delete an item; true when deleted.\n    permission: items:write\n",
        "  - name: deleteItem\n    description: Delete an item; true when deleted.\n    rest: delete_item\n    permission: items:read\n",
    );
    s.edit(
        OPS,
        "    permission: items:read\n    returns: ItemList",
        "    returns: ItemList",
    );
    s.edit(OPS, "{ itemId: ID!, note: JSON }", "{ itemId: ID! }");
    assert_eq!(
        s.invalid(),
        [
            diag(
                OPS,
                "mutation createItem",
                "`rest` names no operation: `make_item`"
            ),
            diag(
                OPS,
                "mutation deleteItem",
                "permission `items:read` differs from `items:write` of operation `delete_item`; leave it out"
            ),
            diag(
                OPS,
                "query items",
                "a field without `rest` names its `permission`"
            ),
        ]
    );
}

#[test]
fn rest_field_arguments_fit_the_operation() {
    // The resolver of a `rest` field is generated: its arguments feed the operation's path,
    // query and body, so every binding is checked here, not discovered by a client.
    const OPS: &str = "subscriptions/ops.yaml";
    let s = Scratch::minimal();
    s.edit(
        OPS,
        "rest: get_item\n    args: { itemId: \"ID!\" }\n",
        "rest: get_item\n    args: { itemId: ID, extra: Int }\n    bind: { ghost: x }\n",
    );
    s.edit(
        OPS,
        "    rest: create_item\n    args: { input: ItemCreate! }\n    returns: Item",
        "    rest: create_item\n    args: { name: Int!, quantity: Int }\n    returns: ItemList",
    );
    s.edit(
        OPS,
        "    permission: items:write\n    args: { itemId: ID!, note: JSON }\n    returns: Boolean",
        "    rest: delete_item\n    args: { itemId: ID!, note: JSON }\n    bind: { note: { to: item_id, encode: json } }\n    returns: Item",
    );
    s.edit(
        OPS,
        "    permission: items:read\n    returns: ItemList",
        "    rest: list_items\n    args: { limit: String, archived: Boolean }\n    bind: { archived: { to: include_archived, encode: json } }\n    returns: ItemList",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                OPS,
                "mutation createItem",
                "argument `name: Int!` does not fit the body property of type [\"string\"]"
            ),
            diag(
                OPS,
                "mutation createItem",
                "returns `ItemList`, but operation `create_item` answers `Item`"
            ),
            diag(
                OPS,
                "mutation createItem",
                "the body `ItemCreate` of operation `create_item` requires `kind`; no argument feeds it"
            ),
            diag(
                OPS,
                "mutation deleteItem",
                "operation `delete_item` answers no content: the field returns `Boolean`"
            ),
            diag(
                OPS,
                "mutation deleteItem",
                "two arguments feed `item_id` of operation `delete_item`"
            ),
            diag(OPS, "query item", "`bind` names no argument: `ghost`"),
            diag(
                OPS,
                "query item",
                "argument `extra` feeds no path parameter, query parameter or body property `extra` of operation `get_item`"
            ),
            diag(
                OPS,
                "query item",
                "argument `itemId` feeds the required path parameter `item_id`; make it non-null"
            ),
            diag(
                OPS,
                "query items",
                "argument `archived` is encoded as JSON text; query parameter `include_archived` is not a string"
            ),
            diag(
                OPS,
                "query items",
                "argument `limit: String` does not fit query parameter `limit` (Integer)"
            ),
        ]
    );
}

#[test]
fn a_hand_written_source_receives_a_message_of_its_topic() {
    const SUBS: &str = "subscriptions/items.yaml";
    let s = Scratch::minimal();
    s.edit(
        SUBS,
        "      receives: item_changed\n",
        "      receives: item_renamed\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            SUBS,
            "subscription itemChanged",
            "`item_renamed` is not a message of the `items` family"
        )]
    );
    let s = Scratch::minimal();
    s.edit(
        SUBS,
        "      topic: items\n      receives: item_changed\n",
        "      poll: a timer\n      receives: item_changed\n",
    );
    assert!(
        s.invalid()
            .iter()
            .any(|d| d.message == "`receives` needs `topic`: a polled source receives no events")
    );
}

#[test]
fn a_resume_argument_is_an_int_of_a_subscription_on_a_durable_topic() {
    const SUBS: &str = "subscriptions/items.yaml";
    const EVENTS: &str = "events/items.yaml";
    let resume = |s: &Scratch| {
        s.edit(
            SUBS,
            "      filter: [itemId]\n",
            "      filter: [itemId]\n      resume: after\n",
        );
    };
    // Accepted: a nullable Int on a durable topic.
    let s = Scratch::minimal();
    resume(&s);
    s.edit(SUBS, "      kinds:", "      after: Int\n      kinds:");
    s.edit(
        EVENTS,
        "permission: items:read\n",
        "permission: items:read\ndurable: true\n",
    );
    s.load().expect("a resume on a durable topic is valid");
    // Refused: the ring alone is no place to resume from, nor a missing or non-Int argument.
    let s = Scratch::minimal();
    resume(&s);
    s.edit(SUBS, "      kinds:", "      after: String\n      kinds:");
    assert_eq!(
        s.invalid(),
        [
            diag(
                SUBS,
                "subscription itemChanged",
                "`resume` needs a durable topic (`durable: true` on its event family)"
            ),
            diag(
                SUBS,
                "subscription itemChanged",
                "resume argument `after` is `String`, not `Int`"
            ),
        ]
    );
    let s = Scratch::minimal();
    resume(&s);
    s.edit(
        EVENTS,
        "permission: items:read\n",
        "permission: items:read\ndurable: true\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            SUBS,
            "subscription itemChanged",
            "resume `after` is not an argument"
        )]
    );
}

#[test]
fn subscriptions_file_names_a_rust_trait() {
    // Each file becomes one trait (`items.yaml` -> `ItemsFields`), so its stem is snake_case.
    let s = Scratch::minimal();
    s.write("subscriptions/More-Ops.yaml", "subscriptions: []\n");
    assert_eq!(
        s.invalid(),
        [diag(
            "subscriptions/More-Ops.yaml",
            "file name",
            "a subscriptions file name is lowercase snake_case (it names a Rust trait)"
        )]
    );
}

#[test]
fn subscription_with_unknown_permission_type_and_topic() {
    let s = Scratch::minimal();
    s.edit(SUBS, "permission: items:read", "permission: items:watch");
    s.edit(SUBS, "returns: ItemChange", "returns: ItemChanged");
    s.edit(SUBS, "topic: items", "topic: things");
    assert_eq!(
        s.invalid(),
        [
            diag(
                SUBS,
                "subscription itemChanged",
                "unknown event family `things` in source.topic"
            ),
            diag(
                SUBS,
                "subscription itemChanged",
                "unknown permission `items:watch`"
            ),
            diag(
                SUBS,
                "subscription itemChanged",
                "unknown type reference `ItemChanged`"
            ),
        ]
    );
}

#[test]
fn subscription_with_bad_argument_types() {
    let s = Scratch::minimal();
    s.edit(
        SUBS,
        "      kinds: \"[String!]\"\n",
        "      kinds: \"[[String!]]\"\n      since: int\n      count: 5\n      after: \"[Int\"\n",
    );
    let message = |name: &str| {
        format!("argument `{name}` needs a GraphQL type such as `String!` or `[Int!]`")
    };
    let entry = "subscription itemChanged";
    assert_eq!(
        s.invalid(),
        [
            diag(SUBS, entry, &message("after")),
            diag(SUBS, entry, &message("count")),
            diag(SUBS, entry, &message("kinds")),
            diag(SUBS, entry, &message("since")),
        ]
    );
}

#[test]
fn subscription_filter_that_is_not_an_argument() {
    let s = Scratch::minimal();
    s.edit(SUBS, "filter: [itemId]", "filter: [itemId, kind]");
    assert_eq!(
        s.invalid(),
        [diag(
            SUBS,
            "subscription itemChanged",
            "filter `kind` is not an argument"
        )]
    );
}

#[test]
fn mutation_names_types_and_permissions_are_checked() {
    const OPS: &str = "subscriptions/ops.yaml";
    let s = Scratch::minimal();
    s.edit(OPS, "name: deleteItem", "name: items");
    s.edit(OPS, "returns: Item\n", "returns: Itemm\n");
    s.edit(
        OPS,
        "args: { itemId: ID!, note: JSON }",
        "args: { itemId: Id!, note: JSON }",
    );
    s.edit(OPS, "name: createItem", "name: create_item");
    s.append(
        OPS,
        "  - { name: wipe, description: x, permission: items:wipe, returns: Boolean }\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                OPS,
                "mutation create_item",
                "a mutation name is lowerCamelCase"
            ),
            diag(
                OPS,
                "mutation create_item",
                "unknown type reference `Itemm`"
            ),
            diag(
                OPS,
                "mutation items",
                "argument `itemId`: unknown type `Id`"
            ),
            diag(
                OPS,
                "mutation items",
                "duplicate mutation name (queries and mutations share names)"
            ),
            diag(OPS, "mutation wipe", "unknown permission `items:wipe`"),
        ]
    );
}

// ------------------------------------------------------------------------------------ websockets

#[test]
fn websocket_endpoint_outside_the_ws_prefix() {
    let s = Scratch::minimal();
    s.edit(WS, "path: /api/v1/ws/items", "path: /api/v1/items/ws");
    s.edit(WS, "path: /api/v1/ws/feed", "path: /api/v1/wsfeed");
    let message = "a WebSocket endpoint lives under /api/v1/ws";
    assert_eq!(
        s.invalid(),
        [
            diag(WS, "endpoint /api/v1/items/ws", message),
            diag(WS, "endpoint /api/v1/wsfeed", message),
        ]
    );
}

#[test]
fn websocket_endpoint_duplicates_and_rest_paths() {
    let s = Scratch::minimal();
    s.edit(WS, "path: /api/v1/ws/feed", "path: /api/v1/ws/items");
    s.append(ROUTES, &extra_op("ws_rest", "PUT", "/api/v1/ws/rest", ""));
    s.append(
        WS,
        "  - id: rest\n    path: /api/v1/ws/rest\n    summary: x\n    permission: authenticated\n    \
         topics: []\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                WS,
                "endpoint /api/v1/ws/items",
                "duplicate WebSocket endpoint"
            ),
            diag(
                WS,
                "endpoint /api/v1/ws/rest",
                "path is also a REST operation"
            ),
        ]
    );
}

#[test]
fn websocket_endpoint_permission() {
    let s = Scratch::minimal();
    s.edit(WS, "permission: items:read", "permission: items:stream");
    s.edit(WS, "permission: authenticated", "permission: public");
    assert_eq!(
        s.invalid(),
        [
            diag(
                WS,
                "endpoint /api/v1/ws/feed",
                "event streams need credentials; use `authenticated` or a permission"
            ),
            diag(
                WS,
                "endpoint /api/v1/ws/items",
                "unknown permission `items:stream`"
            ),
        ]
    );
}

#[test]
fn websocket_endpoint_ids() {
    let s = Scratch::minimal();
    s.edit(WS, "id: live_feed", "id: liveFeed");
    s.edit(
        WS,
        "path: /api/v1/ws/items\n",
        "id: get_item\n    path: /api/v1/ws/items\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                WS,
                "endpoint /api/v1/ws/feed",
                "endpoint id `liveFeed` is not snake_case"
            ),
            diag(
                WS,
                "endpoint /api/v1/ws/items",
                "endpoint id `get_item` collides with operation `get_item`"
            ),
        ]
    );
}

#[test]
fn websocket_endpoint_topics_and_query() {
    let s = Scratch::minimal();
    s.edit(
        WS,
        "topics: [items]\n    query:",
        "topics: [items, things]\n    query:",
    );
    s.edit(WS, "kind: { type: string", "kind: { type: object");
    assert_eq!(
        s.invalid(),
        [
            diag(
                WS,
                "endpoint /api/v1/ws/items",
                "filter `kind` is not a query parameter"
            ),
            diag(
                WS,
                "endpoint /api/v1/ws/items",
                "parameter `kind` has type `object`; parameters are string, integer, number or \
                 boolean"
            ),
            diag(
                WS,
                "endpoint /api/v1/ws/items",
                "unknown event family `things`"
            ),
        ]
    );
}

#[test]
fn websocket_query_parameters_say_what_they_mean() {
    // One generic implementation serves every endpoint: it knows an interval and filters only.
    let s = Scratch::minimal();
    s.edit(WS, "    interval: interval\n", "    interval: every\n");
    s.edit(WS, "filters: [kind]", "filters: [kind, colour]");
    s.edit(
        WS,
        "      kind: { type: string",
        "      since: { type: integer }\n      kind: { type: string",
    );
    let entry = "endpoint /api/v1/ws/items";
    assert_eq!(
        s.invalid(),
        [
            diag(WS, entry, "filter `colour` is not a query parameter"),
            diag(WS, entry, "interval `every` is not a query parameter"),
            diag(
                WS,
                entry,
                "query parameter `interval` is neither the `interval` nor one of the `filters`"
            ),
            diag(
                WS,
                entry,
                "query parameter `since` is neither the `interval` nor one of the `filters`"
            ),
        ]
    );

    let s = Scratch::minimal();
    s.edit(WS, "    interval: interval\n", "    interval: kind\n");
    s.edit(WS, "filters: [kind]", "filters: [interval]");
    assert_eq!(
        s.invalid(),
        [
            diag(WS, entry, "filter `interval` is a string query parameter"),
            diag(
                WS,
                entry,
                "interval `kind` is an integer query parameter with a minimum of at least 1"
            ),
        ]
    );

    let s = Scratch::minimal();
    s.edit(
        WS,
        "Seconds between messages, minimum: 1 }",
        "Seconds between messages }",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            WS,
            entry,
            "interval `interval` is an integer query parameter with a minimum of at least 1"
        )]
    );
}

#[test]
fn client_messages() {
    let s = Scratch::minimal();
    s.edit(
        WS,
        "client_messages:\n",
        "client_messages:\n  - message_type: ping\n    description: again\n  - message_type: Bad-Type\n    description: x\n    data: Nowhere\n",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                WS,
                "client message Bad-Type",
                "a message_type is lowercase snake_case"
            ),
            diag(
                WS,
                "client message Bad-Type",
                "unknown type reference `Nowhere`"
            ),
            diag(WS, "client message ping", "duplicate client message"),
        ]
    );

    // A statement-streaming message needs an endpoint that streams statements.
    let s = Scratch::minimal();
    s.edit(
        WS,
        "    topics: [items]\n    queries: true\n",
        "    topics: [items]\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            WS,
            "client message follow",
            "a `queries` message needs an endpoint with `queries: true`"
        )]
    );
}

// -------------------------------------------------------------------------- parsing and reporting

#[test]
fn yaml_syntax_error_names_the_file() {
    let s = Scratch::minimal();
    s.edit(
        ROUTES,
        "    summary: Get one item\n",
        "    summary: [Get one item\n",
    );
    let (file, message) = s.parse_error();
    assert_eq!(file, ROUTES);
    assert!(message.contains("line"), "{message}");
    let display = s.error().to_string();
    assert!(
        display.starts_with("routes/items.yaml: failed to parse YAML: "),
        "{display}"
    );
}

#[test]
fn unknown_keys_are_parse_errors_naming_the_file() {
    let cases = [
        (
            ROUTES,
            "    summary: Get one item\n",
            "    summry: Get one item\n",
            "summry",
        ),
        (
            API,
            "title: Minimal API\n",
            "title: Minimal API\ntitel: x\n",
            "titel",
        ),
        (TYPES, "types:\n", "extra: 1\ntypes:\n", "extra"),
        (
            EVENTS,
            "family: items\n",
            "family: items\nencoding: flat\n",
            "encoding",
        ),
        (
            SUBS,
            "    returns: ItemChange\n",
            "    return: ItemChange\n",
            "return",
        ),
        (
            WS,
            "    permission: authenticated\n",
            "    permission: authenticated\n    topic: x\n",
            "topic",
        ),
        (
            ROUTES,
            "{ $ref: ItemCreate, description: The new item }",
            "{ $ref: ItemCreate, required: true }",
            "required",
        ),
    ];
    for (file, from, to, key) in cases {
        let s = Scratch::minimal();
        s.edit(file, from, to);
        let (parse_file, message) = s.parse_error();
        assert_eq!(parse_file, file);
        assert!(
            message.contains(&format!("unknown field `{key}`")),
            "{file}: {message}"
        );
    }
}

#[test]
fn missing_required_key_is_a_parse_error() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "    summary: Get one item\n", "");
    let (file, message) = s.parse_error();
    assert_eq!(file, ROUTES);
    assert!(message.contains("missing field `summary`"), "{message}");
}

#[test]
fn repeated_key_is_a_parse_error_not_last_wins() {
    let s = Scratch::minimal();
    s.append(TYPES, "  ItemKind:\n    type: integer\n");
    let (file, message) = s.parse_error();
    assert_eq!(file, TYPES);
    assert!(
        message.contains("duplicate entry with key \"ItemKind\""),
        "{message}"
    );
}

#[test]
fn missing_api_yaml_is_an_io_error() {
    let s = Scratch::minimal();
    s.remove(API);
    match s.error() {
        CodegenError::Io { path, .. } => assert_eq!(path, s.path().join(API)),
        other => panic!("expected Io, got {other}"),
    }
}

#[test]
fn invalid_display_lists_every_problem() {
    let s = Scratch::minimal();
    s.edit(ROUTES, "status: 201", "status: 302");
    s.edit(ROUTES, "    permission: authenticated\n", "");
    s.edit(SUBS, "filter: [itemId]", "filter: [nope]");
    s.edit(WS, "path: /api/v1/ws/feed", "path: /feed");
    let error = s.error();
    assert_eq!(error.diagnostics().len(), 4);
    assert_eq!(
        error.to_string(),
        "invalid schema (4 problems):\n  \
         - routes/items.yaml: operation create_item: response status 302 is not a success status\n  \
         - routes/items.yaml: operation list_items: operation without permission (name one, or \
         `public` / `authenticated`)\n  \
         - subscriptions/items.yaml: subscription itemChanged: filter `nope` is not an argument\n  \
         - websockets.yaml: endpoint /feed: a WebSocket endpoint lives under /api/v1/ws"
    );
}

#[test]
fn invalid_display_with_one_problem_and_no_entry() {
    let s = Scratch::minimal();
    s.edit(TYPES, "  ErrorBody:\n", "  ErrorBodyX:\n");
    assert_eq!(
        s.error().to_string(),
        "invalid schema (1 problem):\n  - api.yaml: types: type `ErrorBody` is required: every \
         error response carries it"
    );
    let d = diag("api.yaml", "", "whole file");
    assert_eq!(d.to_string(), "api.yaml: whole file");
}

#[test]
fn the_same_problem_twice_is_reported_once() {
    // A role that lists the same unknown permission twice: diagnostics are sorted and deduplicated.
    let s = Scratch::minimal();
    s.edit(
        API,
        "permissions: [items:read]\n",
        "permissions: [items:gone, items:gone]\n",
    );
    assert_eq!(
        s.invalid(),
        [diag(API, "role reader", "unknown permission `items:gone`")]
    );
}

#[test]
fn schema_paths_lists_every_file() {
    let s = Scratch::minimal();
    let paths = rustydb_codegen::schema_paths(s.path()).unwrap();
    let rel: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(s.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        rel,
        [
            "api.yaml",
            "types/items.yaml",
            "routes/items.yaml",
            "events/items.yaml",
            "subscriptions/items.yaml",
            "subscriptions/ops.yaml",
            "websockets.yaml",
        ]
    );
}

/// A subscription the generator writes whole, over the `item_stats` message.
const STATS: &str = "subscriptions/stats.yaml";

fn stats_source(returns_props: &str, source: &str) -> Scratch {
    let s = Scratch::minimal();
    s.append(
        "types/items.yaml",
        &format!(
            "  ItemKindUpper:\n    type: string\n    enum: [WIDGET, GADGET]\n  \
             Stats:\n    type: object\n    required: [total]\n    properties:\n{returns_props}"
        ),
    );
    s.write(
        STATS,
        &format!(
            "subscriptions:\n  - name: itemStats\n    description: Item counts.\n    \
             permission: items:read\n    args: {{ kind: ItemKind, kinds: \"[String!]\" }}\n    \
             returns: Stats\n    source: {source}\n"
        ),
    );
    s
}

#[test]
fn a_generated_source_decodes_its_event_with_renames_case_maps_and_a_delivery_timestamp() {
    let s = stats_source(
        "      total: { type: integer }\n      largest: { $ref: ItemKindUpper }\n      \
         timestamp: { type: string, format: date-time }\n",
        "{ topic: items, event: item_stats, fields: { total: count, largest: largest_kind }, \
         filter: { kind: { eq: largest_kind } } }",
    );
    let api = s.load().expect("valid");
    let sub = api
        .subscriptions
        .iter()
        .find(|s| s.name == "itemStats")
        .expect("declared");
    let d = sub.decode.as_ref().expect("generated source");
    assert_eq!(d.message_type, "item_stats");
    assert_eq!(
        d.renames,
        [
            ("count".to_string(), "total".to_string()),
            ("largest_kind".to_string(), "largest".to_string())
        ]
    );
    assert_eq!(
        d.values,
        [
            ("largest_kind".into(), "widget".into(), "WIDGET".into()),
            ("largest_kind".into(), "gadget".into(), "GADGET".into())
        ]
    );
    assert!(d.stamped);
    assert_eq!(d.filters.len(), 1);
    assert!(!d.filters[0].any_of);
    assert_eq!(sub.filter, ["kind"]);
}

#[test]
fn a_generated_source_refuses_a_returned_type_that_drifted_from_its_event() {
    let s = stats_source(
        // `count` is an integer, not a boolean; the event's `largest_kind` has a value this
        // enum lacks; `total` has no field; `kinds` is a list compared with `eq`; `nope` is no
        // argument.
        "      count: { type: boolean }\n      largest_kind: { type: string, enum: [widget] }\n      \
         total: { type: integer }\n",
        "{ topic: items, event: item_stats, filter: { kinds: { eq: count }, nope: { in: count } } }",
    );
    assert_eq!(
        s.invalid(),
        [
            diag(
                STATS,
                "subscription itemStats",
                "`Stats.count` cannot hold `item_stats.count`: a boolean vs an integer"
            ),
            diag(
                STATS,
                "subscription itemStats",
                "`Stats.largest_kind` cannot hold `item_stats.largest_kind`: the event's value `gadget` has no counterpart"
            ),
            diag(
                STATS,
                "subscription itemStats",
                "`Stats.total` has no field in `item_stats` (name one with `fields: {total: <event field>}`)"
            ),
            diag(
                STATS,
                "subscription itemStats",
                "filter `kinds`: `in` takes a list argument, `eq` a single value (`kinds` is `[String!]`)"
            ),
            diag(
                STATS,
                "subscription itemStats",
                "filter `nope` is not an argument"
            ),
        ]
    );
}

#[test]
fn a_generated_source_needs_a_flat_message_of_its_topic_and_a_required_field() {
    let s = stats_source(
        "      total: { type: integer }\n      largest_kind: { $ref: ItemKind }\n",
        "{ topic: items, event: item_changed }",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            STATS,
            "subscription itemStats",
            "`item_changed` has variants: only a flat message decodes into one type"
        )]
    );
    let s = stats_source(
        "      total: { type: integer }\n      largest_kind: { $ref: ItemKind }\n",
        "{ topic: items, event: item_gone, fields: { total: count } }",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            STATS,
            "subscription itemStats",
            "`item_gone` is not a message of the `items` family"
        )]
    );
    // Required in the returned type, optional in the event.
    s.edit(STATS, "item_gone", "item_stats");
    s.edit(
        "types/items.yaml",
        "required: [total]",
        "required: [total, largest_kind]",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            STATS,
            "subscription itemStats",
            "`Stats.largest_kind` is required but `item_stats.largest_kind` is optional"
        )]
    );
    // A polled source has no topic to decode.
    let polled = stats_source(
        "      total: { type: integer }\n",
        "{ poll: the item counter, event: item_stats }",
    );
    assert_eq!(
        polled.invalid(),
        [diag(
            STATS,
            "subscription itemStats",
            "`event` needs `topic`: a polled source decodes nothing"
        )]
    );
    // Rules need `event`; a hand-written source lists its filter arguments.
    s.edit(
        STATS,
        "event: item_stats, fields: { total: count }",
        "receives: item_stats, filter: { kind: { eq: count } }",
    );
    assert_eq!(
        s.invalid(),
        [diag(
            STATS,
            "subscription itemStats",
            "filter rules (`{eq: field}`, `{in: field}`) need `event`"
        )]
    );
}
