//! Reads schemas, tables, views, routines, triggers, events and foreign keys from
//! `information_schema`, with their definers and bodies.
//!
//! `information_schema` silently hides what the reader may not see (an empty view definition
//! without SHOW VIEW, a NULL routine body without SHOW_ROUTINE or global SELECT, no triggers
//! without TRIGGER). Hidden bodies are counted and turned into an error by the caller, because a
//! missing definer path is a false "nobody can reach this table".

use crate::db::server::parse_definer;
use crate::db::Server;
use crate::error::Result;
use crate::model::inventory::{Event, ForeignKey, Routine, Security, Table, Trigger, View};
use crate::model::{Objects, RoutineKind, TableName};

/// Schemas whose contents are server internals, not application objects.
pub const INTERNAL_SCHEMAS: &[&str] = &["information_schema", "performance_schema"];

/// Objects read, plus how many bodies the server hid from us.
pub struct ObjectsRead {
    pub objects: Objects,
    /// `(kind, qualified name)` of objects whose body came back empty or NULL.
    pub hidden_bodies: Vec<(String, String)>,
}

use crate::db::server::text as s;

use crate::db::server::opt_text as opt;

fn security(v: &str) -> Security {
    if v.eq_ignore_ascii_case("INVOKER") {
        Security::Invoker
    } else {
        Security::Definer
    }
}

const NOT_INTERNAL: &str = "NOT IN ('information_schema', 'performance_schema')";

/// Reads all objects visible to privfence's account.
pub async fn read(server: &mut Server) -> Result<ObjectsRead> {
    let mut o = Objects::default();
    let mut hidden = Vec::new();
    o.schemas = server
        .rows_as::<String>(
            "listing schemas",
            &format!("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME {NOT_INTERNAL} ORDER BY 1"),
        )
        .await?;
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA {NOT_INTERNAL} ORDER BY 1, 2"
    );
    for row in server.rows("listing tables", &sql).await? {
        o.tables.push(Table { name: TableName::new(s(&row, 0), s(&row, 1)), is_view: s(&row, 2) == "VIEW" });
    }
    o.views = read_views(server, &mut hidden).await?;
    o.routines = read_routines(server, &mut hidden).await?;
    o.triggers = read_triggers(server).await?;
    o.events = read_events(server).await?;
    o.foreign_keys = read_foreign_keys(server).await?;
    Ok(ObjectsRead { objects: o, hidden_bodies: hidden })
}

/// Views and their definitions; a view whose definition privfence cannot see goes to `hidden`.
async fn read_views(server: &mut Server, hidden: &mut Vec<(String, String)>) -> Result<Vec<View>> {
    let sql = format!("SELECT TABLE_SCHEMA, TABLE_NAME, DEFINER, SECURITY_TYPE, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA {NOT_INTERNAL}");
    let mut views = Vec::new();
    for row in server.rows("reading view definitions", &sql).await? {
        let name = TableName::new(s(&row, 0), s(&row, 1));
        let definition = s(&row, 4);
        if definition.is_empty() {
            hidden.push(("view".to_string(), name.sql()));
        }
        views.push(View { name, definer: parse_definer(&s(&row, 2)), security: security(&s(&row, 3)), definition });
    }
    Ok(views)
}

/// Stored routines and their bodies; a body privfence cannot see goes to `hidden`.
async fn read_routines(server: &mut Server, hidden: &mut Vec<(String, String)>) -> Result<Vec<Routine>> {
    let sql = format!("SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, DEFINER, SECURITY_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA {NOT_INTERNAL}");
    let mut routines = Vec::new();
    for row in server.rows("reading routine definitions", &sql).await? {
        let Some(kind) = RoutineKind::parse(&s(&row, 2)) else { continue };
        let body = opt(&row, 5);
        if body.is_none() {
            hidden.push(("routine".into(), format!("{}.{}", s(&row, 0), s(&row, 1))));
        }
        routines.push(Routine {
            kind,
            schema: s(&row, 0),
            name: s(&row, 1),
            definer: parse_definer(&s(&row, 3)),
            security: security(&s(&row, 4)),
            body: body.unwrap_or_default(),
        });
    }
    Ok(routines)
}

async fn read_triggers(server: &mut Server) -> Result<Vec<Trigger>> {
    let sql = format!("SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, DEFINER, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA {NOT_INTERNAL}");
    let rows = server.rows("reading triggers", &sql).await?;
    Ok(rows
        .iter()
        .map(|row| Trigger {
            schema: s(row, 0),
            name: s(row, 1),
            table: TableName::new(s(row, 2), s(row, 3)),
            event: s(row, 4),
            definer: parse_definer(&s(row, 5)),
            body: s(row, 6),
        })
        .collect())
}

async fn read_events(server: &mut Server) -> Result<Vec<Event>> {
    let sql = format!("SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER, STATUS, EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA {NOT_INTERNAL}");
    let rows = match server.rows("reading events", &sql).await {
        // MariaDB started with event_scheduler=DISABLED refuses information_schema.EVENTS
        // (1577); its mysql.event table holds the same facts.
        Err(crate::error::Error::Query { source: mysql_async::Error::Server(e), .. }) if e.code == 1577 => {
            let sql = "SELECT db, name, definer, CAST(status AS CHAR), CONVERT(body USING utf8mb4) FROM mysql.event";
            server.rows("reading events (mysql.event)", sql).await?
        }
        other => other?,
    };
    Ok(rows
        .iter()
        .map(|row| Event {
            schema: s(row, 0),
            name: s(row, 1),
            definer: parse_definer(&s(row, 2)),
            enabled: s(row, 3) == "ENABLED",
            body: s(row, 4),
        })
        .collect())
}

async fn read_foreign_keys(server: &mut Server) -> Result<Vec<ForeignKey>> {
    let sql = "SELECT CONSTRAINT_SCHEMA, CONSTRAINT_NAME, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS";
    let rows = server.rows("reading foreign keys", sql).await?;
    Ok(rows
        .iter()
        .map(|row| ForeignKey {
            name: s(row, 1),
            child: TableName::new(s(row, 0), s(row, 2)),
            parent: TableName::new(s(row, 3), s(row, 4)),
            on_delete: s(row, 5),
            on_update: s(row, 6),
        })
        .collect())
}
