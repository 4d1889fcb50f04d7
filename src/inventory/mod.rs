//! Reading a server's privileges and objects into an [`Inventory`],
//! and cross-checking it against the server's own `SHOW GRANTS`.

pub mod capabilities;
pub mod grants;
pub mod objects;
pub mod showgrants;
pub mod verify;
pub mod views;

use crate::db::Server;
use crate::error::{Error, Result};
use crate::model::Inventory;

/// Reads the whole inventory. Fails (rather than answer too cleanly) when the server hid object
/// bodies from privfence's account.
pub async fn take(server: &mut Server) -> Result<Inventory> {
    // Objects come from information_schema, which opens every table: read them on a second
    // connection while this one reads the grant tables, and the table grants (most rows of a
    // large server) on a third, all at once.
    let (mut second, mut third) = tokio::try_join!(server.another(), server.another())?;
    let (g, o) = tokio::join!(grants::read_split(server, Some(&mut third)), objects::read(&mut second));
    tokio::join!(second.close(), third.close());
    let mut inv = g.map_err(|e| explain_denied(server, e, "read the grant tables", "SELECT on the mysql schema"))?;
    capabilities::require_inventory_capabilities(&inv, &server.current_user, &server.target)?;
    let o = o?;
    if let Some((kind, name)) = o.hidden_bodies.first() {
        let needed = match server.info.flavour {
            crate::db::Flavour::MySql => "SHOW VIEW and SHOW_ROUTINE (or SELECT) on *.*",
            crate::db::Flavour::MariaDb => "SHOW VIEW and SELECT on *.* (routine bodies need SELECT on mysql.proc)",
        };
        return Err(Error::MissingPrivilege {
            target: server.target.clone(),
            account: server.current_user.sql(),
            what: format!("see the definitions of {} object(s) (first: {kind} {name})", o.hidden_bodies.len()),
            needed: needed.into(),
            hint: "Without them a definer view or routine could reach a table unseen; `privfence doctor` lists what is missing.".into(),
        });
    }
    inv.objects = o.objects;
    Ok(inv)
}

/// Turns a privilege error (1142/1044/1143) into a [`Error::MissingPrivilege`] naming the need.
pub fn explain_denied(server: &Server, e: Error, what: &str, needed: &str) -> Error {
    if let Error::Query { source: mysql_async::Error::Server(ref se), .. } = e {
        if matches!(se.code, 1142 | 1143 | 1044 | 1227 | 1370) {
            return Error::MissingPrivilege {
                target: server.target.clone(),
                account: server.current_user.sql(),
                what: what.into(),
                needed: needed.into(),
                hint: format!("The server said: {}", se.message),
            };
        }
    }
    e
}
