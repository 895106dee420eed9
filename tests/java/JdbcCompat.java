// pgjdbc through the airlock proxy: what DBeaver and DataGrip do on connect
// (DatabaseMetaData), server-side prepared statements past prepareThreshold,
// batches, transactions, cursor fetches, notifications and password
// authentication. Exits non-zero on the first failed check; the last line of
// a good run is "JDBC OK <checks>".
//
// Usage: java JdbcCompat <port> <database> <table-suffix> <password>
//        java JdbcCompat --metadata-dump <port> <database> <schema>
//   (prints what DatabaseMetaData answers about <schema>, one line per row,
//   creating nothing: for comparing a connection through the proxy with a
//   direct one)

import java.sql.*;
import java.util.*;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.PGStatement;

public class JdbcCompat {
    static int checks = 0;

    static void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            throw new AssertionError("check failed: " + what);
        }
    }

    static void checkEq(Object want, Object got, String what) {
        check(Objects.equals(want, got), what + ": want <" + want + ">, got <" + got + ">");
    }

    public static void main(String[] args) {
        try {
            if (args.length > 0 && args[0].equals("--metadata-dump")) {
                dump(args[1], args[2], args[3]);
                return;
            }
            run(args);
            System.out.println("JDBC OK " + checks);
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
    }

    /** Prints every row of `rs`, prefixed with `what`. */
    static void print(String what, ResultSet rs) throws SQLException {
        ResultSetMetaData m = rs.getMetaData();
        int n = m.getColumnCount();
        StringBuilder head = new StringBuilder(what).append(" columns:");
        for (int i = 1; i <= n; i++) {
            head.append(' ').append(m.getColumnLabel(i));
        }
        System.out.println(head);
        while (rs.next()) {
            StringBuilder row = new StringBuilder(what).append(':');
            for (int i = 1; i <= n; i++) {
                row.append(" | ").append(rs.getString(i));
            }
            System.out.println(row);
        }
        rs.close();
    }

    /** What a database navigator asks on connect and on opening a schema. */
    static void dump(String port, String database, String schema) throws SQLException {
        String url = "jdbc:postgresql://127.0.0.1:" + port + "/" + database;
        try (Connection c = open(url, "postgres", null)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product: " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            System.out.println("user: " + md.getUserName() + " read-only: " + md.isReadOnly());
            System.out.println("keywords: " + md.getSQLKeywords());
            System.out.println("functions: " + md.getStringFunctions() + " / " + md.getSystemFunctions());
            print("catalogs", md.getCatalogs());
            print("schemas", md.getSchemas());
            print("schemas like", md.getSchemas(null, schema));
            print("table types", md.getTableTypes());
            print("types", md.getTypeInfo());
            print("tables", md.getTables(null, schema, "%", null));
            print("columns", md.getColumns(null, schema, "%", "%"));
            print("table privileges", md.getTablePrivileges(null, schema, "%"));
            print("procedures", md.getProcedures(null, schema, "%"));
            print("functions", md.getFunctions(null, schema, "%"));
            print("function columns", md.getFunctionColumns(null, schema, "%", "%"));
            print("udts", md.getUDTs(null, schema, "%", null));
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, schema, "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_NAME"));
                }
            }
            for (String t : tables) {
                print("primary keys " + t, md.getPrimaryKeys(null, schema, t));
                print("imported keys " + t, md.getImportedKeys(null, schema, t));
                print("exported keys " + t, md.getExportedKeys(null, schema, t));
                print("indexes " + t, md.getIndexInfo(null, schema, t, false, true));
                print("best row " + t, md.getBestRowIdentifier(null, schema, t, DatabaseMetaData.bestRowSession, true));
                print("version columns " + t, md.getVersionColumns(null, schema, t));
                print("column privileges " + t, md.getColumnPrivileges(null, schema, t, "%"));
            }
            print("client info", md.getClientInfoProperties());
        }
    }

    static Connection open(String url, String user, String password) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        if (password != null) {
            p.setProperty("password", password);
        }
        p.setProperty("prepareThreshold", "5");
        p.setProperty("ApplicationName", "airlock-jdbc-test");
        return DriverManager.getConnection(url, p);
    }

    static long scalarLong(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            check(rs.next(), "a row from " + sql);
            return rs.getLong(1);
        }
    }

    static void run(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/" + args[1];
        String t = "jdbc_" + args[2];
        String password = args[3];

        // Password authentication relayed by the proxy.
        for (String user : new String[] {"scram_user", "md5_user", "password_user"}) {
            try (Connection c = open(url, user, password)) {
                try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery("select current_user")) {
                    check(rs.next(), "row");
                    checkEq(user, rs.getString(1), "current_user");
                }
            }
            try (Connection c = open(url, user, "wrong-password")) {
                check(false, user + " connected with a wrong password");
            } catch (SQLException e) {
                checkEq("28P01", e.getSQLState(), user + " wrong password SQLSTATE");
            }
        }

        try (Connection c = open(url, "postgres", null);
                Connection other = open(url, "postgres", null)) {
            int pid = (int) scalarLong(c, "select pg_backend_pid()");
            checkEq(pid, c.unwrap(PGConnection.class).getBackendPID(), "backend pid");
            metadata(c, t);
            prepared(c, t);
            batch(c, t);
            transactions(c, other, t);
            cursor(c);
            notifications(c, other, t);
            try (Statement s = c.createStatement()) {
                s.execute("drop table " + t + "_child; drop table " + t + "; drop function " + t + "_fn(int)");
            }
        }
    }

    static void metadata(Connection c, String t) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("create table " + t + " (id int primary key, name text not null, amount numeric(10,2), created timestamptz default now())");
            s.execute("create table " + t + "_child (parent int references " + t + "(id), k int, v text, primary key (parent, k))");
            s.execute("create function " + t + "_fn(x int) returns int language sql immutable as 'select x * 3'");
        }
        DatabaseMetaData md = c.getMetaData();
        check(md.getDatabaseProductVersion().startsWith("15"), "server version " + md.getDatabaseProductVersion());
        checkEq("PostgreSQL", md.getDatabaseProductName(), "product name");

        try (ResultSet rs = md.getTables(null, "public", t + "%", new String[] {"TABLE"})) {
            List<String> names = new ArrayList<>();
            while (rs.next()) {
                checkEq("TABLE", rs.getString("TABLE_TYPE"), "table type");
                names.add(rs.getString("TABLE_NAME"));
            }
            checkEq(List.of(t, t + "_child"), names, "getTables");
        }
        try (ResultSet rs = md.getColumns(null, "public", t, "%")) {
            List<String> cols = new ArrayList<>();
            while (rs.next()) {
                cols.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME") + ":" + rs.getInt("NULLABLE"));
            }
            checkEq(List.of("id:int4:0", "name:text:0", "amount:numeric:1", "created:timestamptz:1"), cols, "getColumns");
        }
        try (ResultSet rs = md.getPrimaryKeys(null, "public", t + "_child")) {
            List<String> pk = new ArrayList<>();
            while (rs.next()) {
                pk.add(rs.getString("COLUMN_NAME") + "@" + rs.getInt("KEY_SEQ"));
            }
            checkEq(List.of("parent@1", "k@2"), pk, "getPrimaryKeys");
        }
        try (ResultSet rs = md.getImportedKeys(null, "public", t + "_child")) {
            check(rs.next(), "getImportedKeys row");
            checkEq(t, rs.getString("PKTABLE_NAME"), "foreign key target");
        }
        try (ResultSet rs = md.getSchemas()) {
            Set<String> schemas = new HashSet<>();
            while (rs.next()) {
                schemas.add(rs.getString("TABLE_SCHEM"));
            }
            check(schemas.containsAll(List.of("public", "pg_catalog", "information_schema")), "getSchemas " + schemas);
        }
        try (ResultSet rs = md.getTypeInfo()) {
            Set<String> types = new HashSet<>();
            while (rs.next()) {
                types.add(rs.getString("TYPE_NAME"));
            }
            check(types.containsAll(List.of("int4", "int8", "text", "bytea", "numeric", "timestamptz", "bool")), "getTypeInfo");
        }
        try (ResultSet rs = md.getFunctions(null, "public", t + "_fn")) {
            check(rs.next(), "getFunctions finds the function");
            checkEq(t + "_fn", rs.getString("FUNCTION_NAME"), "function name");
            check(!rs.next(), "one function");
        }
        try (ResultSet rs = md.getIndexInfo(null, "public", t, true, false)) {
            check(rs.next(), "getIndexInfo");
            checkEq(t + "_pkey", rs.getString("INDEX_NAME"), "primary key index");
        }
    }

    static void prepared(Connection c, String t) throws SQLException {
        try (PreparedStatement ins = c.prepareStatement("insert into " + t + " (id, name, amount) values (?, ?, ?)");
                PreparedStatement sel = c.prepareStatement(
                        "select name, amount, ?::int * 2, " + t + "_fn(?), ?::text is null from " + t + " where id = ?")) {
            for (int i = 1; i <= 30; i++) {
                ins.setInt(1, i);
                ins.setString(2, "name " + i + " ✓");
                if (i % 4 == 0) {
                    ins.setNull(3, Types.NUMERIC);
                } else {
                    ins.setBigDecimal(3, new java.math.BigDecimal(i + ".25"));
                }
                checkEq(1, ins.executeUpdate(), "insert count");

                sel.setInt(1, i);
                sel.setInt(2, i);
                if (i % 2 == 0) {
                    sel.setNull(3, Types.VARCHAR);
                } else {
                    sel.setString(3, "x");
                }
                sel.setInt(4, i);
                try (ResultSet rs = sel.executeQuery()) {
                    check(rs.next(), "row " + i);
                    checkEq("name " + i + " ✓", rs.getString(1), "name");
                    checkEq(i % 4 == 0 ? null : new java.math.BigDecimal(i + ".25"), rs.getBigDecimal(2), "amount");
                    checkEq(i * 2, rs.getInt(3), "doubled");
                    checkEq(i * 3, rs.getInt(4), "function result");
                    checkEq(i % 2 == 0, rs.getBoolean(5), "null parameter");
                    check(!rs.next(), "one row");
                }
            }
            check(sel.unwrap(PGStatement.class).isUseServerPrepare(), "server-side prepare in use");
            check(ins.unwrap(PGStatement.class).isUseServerPrepare(), "server-side prepare in use");
        }
        long named = scalarLong(c, "select count(*) from pg_prepared_statements where statement like 'insert into " + t + "%'");
        checkEq(1L, named, "named server statement for the insert");
    }

    static void batch(Connection c, String t) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("insert into " + t + " (id, name) values (?, ?)")) {
            for (int i = 1000; i < 1100; i++) {
                ps.setInt(1, i);
                ps.setString(2, "batch " + i);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            checkEq(100, counts.length, "batch size");
            for (int n : counts) {
                check(n == 1 || n == Statement.SUCCESS_NO_INFO, "batch count " + n);
            }
        }
        checkEq(100L, scalarLong(c, "select count(*) from " + t + " where id >= 1000"), "batch rows");
        try (Statement s = c.createStatement()) {
            s.addBatch("update " + t + " set amount = 1 where id >= 1000 and id < 1010");
            s.addBatch("delete from " + t + " where id >= 1090");
            int[] counts = s.executeBatch();
            checkEq(List.of(10, 10), List.of(counts[0], counts[1]), "statement batch counts");
        }
    }

    static void transactions(Connection c, Connection other, String t) throws SQLException {
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
            s.executeUpdate("insert into " + t + " (id, name) values (2001, 'committed')");
            checkEq(0L, scalarLong(other, "select count(*) from " + t + " where id = 2001"), "invisible before commit");
            c.commit();
            checkEq(1L, scalarLong(other, "select count(*) from " + t + " where id = 2001"), "visible after commit");

            s.executeUpdate("insert into " + t + " (id, name) values (2002, 'rolled back')");
            c.rollback();
            checkEq(0L, scalarLong(c, "select count(*) from " + t + " where id = 2002"), "gone after rollback");
            c.commit();

            // An error fails the transaction until rollback.
            s.executeUpdate("insert into " + t + " (id, name) values (2003, 'lost')");
            try {
                s.executeQuery("select 1/0");
                check(false, "division by zero succeeded");
            } catch (SQLException e) {
                checkEq("22012", e.getSQLState(), "division by zero");
            }
            try {
                s.executeQuery("select 1");
                check(false, "statement in a failed transaction succeeded");
            } catch (SQLException e) {
                checkEq("25P02", e.getSQLState(), "failed transaction");
            }
            c.rollback();
            checkEq(0L, scalarLong(c, "select count(*) from " + t + " where id = 2003"), "lost after rollback");
            c.commit();

            Savepoint sp = null;
            s.executeUpdate("insert into " + t + " (id, name) values (2004, 'kept')");
            sp = c.setSavepoint();
            s.executeUpdate("insert into " + t + " (id, name) values (2005, 'undone')");
            c.rollback(sp);
            c.commit();
            checkEq(1L, scalarLong(other, "select count(*) from " + t + " where id in (2004, 2005)"), "savepoint");
        } finally {
            c.setAutoCommit(true);
        }
    }

    static void cursor(Connection c) throws SQLException {
        // A fetch size inside a transaction makes pgjdbc read a portal in
        // chunks (Execute with a row limit).
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("select g, md5(g::text) from generate_series(1, ?) g")) {
            ps.setFetchSize(100);
            ps.setInt(1, 2500);
            try (ResultSet rs = ps.executeQuery()) {
                int n = 0;
                while (rs.next()) {
                    n++;
                    checkEq(n, rs.getInt(1), "row order");
                }
                checkEq(2500, n, "rows fetched");
            }
            c.commit();
        } finally {
            c.setAutoCommit(true);
        }
    }

    static void notifications(Connection c, Connection other, String t) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("listen " + t);
        }
        int otherPid = (int) scalarLong(other, "select pg_backend_pid()");
        try (PreparedStatement ps = other.prepareStatement("select pg_notify(?, ?)")) {
            ps.setString(1, t);
            ps.setString(2, "hello from jdbc");
            ps.executeQuery().close();
        }
        PGNotification[] got = c.unwrap(PGConnection.class).getNotifications(5000);
        check(got != null && got.length == 1, "one notification");
        checkEq(t, got[0].getName(), "channel");
        checkEq("hello from jdbc", got[0].getParameter(), "payload");
        checkEq(otherPid, got[0].getPID(), "notifying pid");
        try (Statement s = c.createStatement()) {
            s.execute("unlisten *");
        }
    }
}
