//! Word lists the scanner consults: reserved words, clause ends, and common built-in functions.
//!
//! The lists are deliberately modest. `RESERVED` holds the reserved words that shape a
//! statement (a word in it is never taken as an unquoted table name or alias). `NOT_STORED`
//! holds built-in functions, data types and non-reserved keywords that are often followed by `(`,
//! so they are not reported as candidate stored-function calls; a word missing from it only
//! produces a candidate the caller discards.

/// Reserved words that matter to the structure of a statement (MySQL 8.0 and MariaDB).
const RESERVED: &str = "\
    ADD ALL ALTER ANALYZE AND AS ASC BEFORE BETWEEN BINARY BOTH BY CALL CASCADE CASE CHANGE CHAR \
    CHARACTER CHECK COLLATE COLUMN CONDITION CONSTRAINT CONTINUE CONVERT CREATE CROSS CURSOR \
    DATABASE DECLARE DEFAULT DELAYED DELETE DESC DESCRIBE DISTINCT DISTINCTROW DIV DROP DUAL \
    EACH ELSE ELSEIF EXCEPT EXISTS EXIT EXPLAIN FALSE FETCH FOR FORCE FOREIGN FROM FULLTEXT \
    FUNCTION GRANT GROUP HAVING HIGH_PRIORITY IF IGNORE IN INDEX INFILE INNER INOUT INSERT \
    INTERSECT INTERVAL INTO IS ITERATE JOIN KEY KEYS KILL LATERAL LEADING LEAVE LEFT LIKE LIMIT \
    LOAD LOCK LOOP LOW_PRIORITY MATCH MOD NATURAL NOT NULL OF ON OPTIMIZE OR ORDER OUT OUTER \
    OUTFILE OVER PARTITION PRIMARY PROCEDURE READ REFERENCES REGEXP RELEASE RENAME REPEAT \
    REPLACE RESIGNAL RESTRICT RETURN REVOKE RIGHT RLIKE ROW SCHEMA SELECT SET SHOW SIGNAL \
    SPATIAL SQL SQLEXCEPTION SQLSTATE SQLWARNING STRAIGHT_JOIN TABLE THEN TO TRAILING TRIGGER \
    TRUE UNDO UNION UNIQUE UNLOCK UPDATE USAGE USE USING VALUES WHEN WHERE WHILE WINDOW WITH \
    WRITE XOR";

/// Words that end a table-reference list when they appear at its own nesting level. `FOR`,
/// `USING` and `ON` need a look at the next word and are handled by the scanner.
const LIST_END: &str = "WHERE GROUP HAVING ORDER LIMIT WINDOW UNION EXCEPT INTERSECT INTO LOCK SET RETURNING";

/// Built-in functions, types and keywords commonly written before `(`: not stored-function calls.
const NOT_STORED: &str = "\
    COUNT SUM MIN MAX AVG GROUP_CONCAT STD STDDEV VARIANCE BIT_AND BIT_OR BIT_XOR JSON_ARRAYAGG \
    JSON_OBJECTAGG CONCAT CONCAT_WS COALESCE IFNULL NULLIF ISNULL GREATEST LEAST FIELD \
    FIND_IN_SET ELT NOW CURDATE CURTIME SYSDATE UTC_TIMESTAMP UTC_DATE CURRENT_DATE CURRENT_TIME \
    CURRENT_TIMESTAMP LOCALTIME LOCALTIMESTAMP DATE TIME YEAR MONTH DAY HOUR MINUTE SECOND WEEK \
    DAYOFWEEK WEEKDAY DATE_ADD DATE_SUB ADDDATE SUBDATE DATEDIFF DATE_FORMAT STR_TO_DATE \
    TIMESTAMP TIMESTAMPDIFF TIMESTAMPADD UNIX_TIMESTAMP FROM_UNIXTIME LAST_DAY EXTRACT CAST \
    SUBSTRING SUBSTR MID TRIM LTRIM RTRIM LENGTH CHAR_LENGTH UPPER LOWER UCASE LCASE LOCATE \
    INSTR POSITION LPAD RPAD REVERSE FORMAT SPACE ASCII ORD HEX UNHEX ROUND FLOOR CEIL CEILING \
    ABS POW POWER SQRT RAND SIGN TRUNCATE UUID MD5 SHA1 SHA2 ROW_COUNT FOUND_ROWS LAST_INSERT_ID \
    USER SESSION_USER SYSTEM_USER CURRENT_USER VERSION CONNECTION_ID SLEEP GET_LOCK RELEASE_LOCK \
    JSON_EXTRACT JSON_UNQUOTE JSON_OBJECT JSON_ARRAY JSON_CONTAINS JSON_VALUE JSON_TABLE \
    ROW_NUMBER RANK DENSE_RANK LAG LEAD FIRST_VALUE LAST_VALUE NTH_VALUE NTILE ANY SOME AGAINST \
    UNTIL DO VALUE INT INTEGER TINYINT SMALLINT MEDIUMINT BIGINT DECIMAL NUMERIC FLOAT DOUBLE \
    REAL BIT VARCHAR VARBINARY NCHAR NVARCHAR DATETIME ENUM SIGNED UNSIGNED";

/// Functions whose argument list may contain `FROM` as a keyword: `EXTRACT(YEAR FROM d)`,
/// `TRIM(LEADING 'x' FROM s)`, `SUBSTRING(s FROM 2 FOR 3)`.
const FROM_IN_ARGS: &str = "EXTRACT TRIM SUBSTRING SUBSTR MID OVERLAY";

/// Whether the space-separated `list` holds `w`, ignoring ASCII case.
fn contains(list: &str, w: &str) -> bool {
    list.split_ascii_whitespace().any(|k| k.eq_ignore_ascii_case(w))
}

/// A reserved word: never an unquoted table name or alias.
pub(crate) fn is_reserved(w: &str) -> bool {
    contains(RESERVED, w)
}

/// A word that ends a table-reference list.
pub(crate) fn ends_list(w: &str) -> bool {
    contains(LIST_END, w)
}

/// A word followed by `(` that is certainly not a stored-function call.
pub(crate) fn not_stored_function(w: &str) -> bool {
    contains(NOT_STORED, w) || is_reserved(w)
}

/// A function whose arguments may contain the keyword `FROM`.
pub(crate) fn has_from_in_args(w: &str) -> bool {
    contains(FROM_IN_ARGS, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case() {
        assert!(is_reserved("select") && is_reserved("STRAIGHT_JOIN"));
        assert!(!is_reserved("status") && !is_reserved("user") && !is_reserved("truncate"));
        assert!(not_stored_function("count") && not_stored_function("if") && !not_stored_function("my_func"));
        assert!(ends_list("where") && !ends_list("on"));
        assert!(has_from_in_args("Extract"));
    }
}
