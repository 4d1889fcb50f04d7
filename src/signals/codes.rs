//! The error numbers the watch counts, with their server names: a leaf module that the readers
//! of every source (`errors`, `pfs`, `errlog`, the monitor) share.

/// The error numbers that mean "a privilege was missing": database (1044), table (1142), column
/// (1143), `EXPLAIN`/`SHOW` on a view (1345), view whose definer or invoker lacks rights (1356),
/// routine (1370), missing definer (1449). MySQL 9's 3554 on information_schema and the 1064
/// its client provokes are deliberately not in the list.
pub const PRIVILEGE_ERRORS: [u32; 7] = [1044, 1142, 1143, 1345, 1356, 1370, 1449];

/// Denied connection attempts besides a refused default database (1044, in
/// [`PRIVILEGE_ERRORS`]): a refused login (1045), no password given (1698), a locked account
/// (MySQL 3118, MariaDB 4151), and a default role that can no longer be activated (MariaDB
/// 1959, logged at login while the connection goes on without the role). A cut can cause every
/// one of them (a role taken away, a host row edited, a default database lost), so each is an
/// alarm: an application that cannot log in is the clearest sign a cut hurts.
pub const LOGIN_ERRORS: [u32; 5] = [1045, 1698, 3118, 4151, 1959];

/// Errors that mean a connection attempt of the account was refused (or, for 1959, started
/// without its default role): [`LOGIN_ERRORS`] and a refused default database.
pub fn is_login_error(code: u32) -> bool {
    code == 1044 || LOGIN_ERRORS.contains(&code)
}

/// The server's symbolic name of an error number we watch.
pub fn error_name(code: u32) -> &'static str {
    match code {
        1044 => "ER_DBACCESS_DENIED_ERROR",
        1045 => "ER_ACCESS_DENIED_ERROR",
        1142 => "ER_TABLEACCESS_DENIED_ERROR",
        1143 => "ER_COLUMNACCESS_DENIED_ERROR",
        1345 => "ER_VIEW_NO_EXPLAIN",
        1356 => "ER_VIEW_INVALID",
        1370 => "ER_PROCACCESS_DENIED_ERROR",
        1449 => "ER_NO_SUCH_USER",
        1698 => "ER_ACCESS_DENIED_NO_PASSWORD_ERROR",
        1959 => "ER_INVALID_ROLE",
        3118 => "ER_ACCOUNT_HAS_BEEN_LOCKED",
        4151 => "ER_ACCOUNT_HAS_BEEN_LOCKED",
        _ => "",
    }
}

/// The comma-separated list of watched error numbers, for SQL `IN (...)`.
pub fn sql_list(codes: &[u32]) -> String {
    codes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
