//! Scripting and functions, publish, server, client and ACL commands, and typed pipelines and transactions.

use super::*;

family!(
    /// EVAL with keys and args, SCRIPT LOAD/EXISTS/FLUSH, EVALSHA, FUNCTION
    /// LOAD/LIST/DELETE, FCALL, FCALL_RO.
    scripting_and_functions => scripting_family
);

async fn scripting_family(p: Protocol, c: &Valkey) -> Result<()> {
    let k = key(p, "script");
    let no_keys: [&str; 0] = [];
    let both: Vec<String> = c
        .eval_with(
            "return {KEYS[1], ARGV[1]}",
            [&k],
            EvalOptions::new().arg(["x"]),
        )
        .await?;
    assert_eq!(both, [k.clone(), "x".to_string()]);
    assert_eq!(c.eval::<i64>("return 42", no_keys).await?, 42);
    let ok: String = c
        .eval_with(
            "return redis.call('SET', KEYS[1], ARGV[1])",
            [&k],
            EvalOptions::new().arg("v"),
        )
        .await?;
    assert_eq!(ok, "OK");
    let v: String = c.eval_ro("return redis.call('GET', KEYS[1])", [&k]).await?;
    assert_eq!(v, "v");
    let err = c
        .eval_ro::<String>("return redis.call('SET', KEYS[1], 'w')", [&k])
        .await
        .unwrap_err();
    assert!(
        err.server_error().is_some(),
        "EVAL_RO refuses a write: {err}"
    );

    let sha = c.script_load("return ARGV[1] .. KEYS[1]").await?;
    assert_eq!(sha.len(), 40, "{sha}");
    let r: String = c
        .evalsha_with(&sha, [&k], EvalshaOptions::new().arg("pre-"))
        .await?;
    assert_eq!(r, format!("pre-{k}"));
    let unknown = "f".repeat(40);
    let exists: Vec<bool> = c.script_exists([&sha, &unknown]).await?;
    assert_eq!(exists, [true, false]);
    let err = c.evalsha::<String>(&unknown, [&k]).await.unwrap_err();
    assert_eq!(err.code(), Some("NOSCRIPT"), "{err}");
    c.script_flush_with(ScriptFlushOptions::new().sync())
        .await?;
    assert_eq!(c.script_exists::<Vec<bool>>([&sha]).await?, [false]);

    // Functions: a library per protocol, as functions are server-wide.
    let lib = format!("famlib{}", n(p));
    let (echo, get) = (format!("fam_echo{}", n(p)), format!("fam_get{}", n(p)));
    let code = format!(
        "#!lua name={lib}\n\
         redis.register_function('{echo}', function(keys, args) return keys[1] .. ':' .. args[1] end)\n\
         redis.register_function{{function_name='{get}', callback=function(keys, args) \
         return redis.call('GET', keys[1]) end, flags={{'no-writes'}}}}\n"
    );
    assert_eq!(c.function_load(&code).await?, lib);
    let err = c.function_load(&code).await.unwrap_err();
    assert!(err.server_error().is_some(), "loaded twice: {err}");
    assert_eq!(
        c.function_load_with(&code, FunctionLoadOptions::new().replace())
            .await?,
        lib
    );
    let r: String = c
        .fcall_with(&echo, [&k], FcallOptions::new().arg("a"))
        .await?;
    assert_eq!(r, format!("{k}:a"));
    let r: Option<String> = c.fcall_ro(&get, [&k]).await?;
    assert_eq!(r.as_deref(), Some("v"));
    // FCALL_RO of a function without the `no-writes` flag is refused.
    let err = c
        .fcall_ro_with::<String>(&echo, [&k], FcallRoOptions::new().arg("b"))
        .await
        .unwrap_err();
    assert!(err.server_error().is_some(), "{err}");
    let libs: Vec<HashMap<String, Value>> = c
        .function_list_with(FunctionListOptions::new().libraryname(&lib))
        .await?;
    assert_eq!(libs.len(), 1);
    assert_eq!(String::from_value(libs[0]["library_name"].clone())?, lib);
    c.function_delete(&lib).await?;
    let err = c.fcall::<String>(&echo, [&k]).await.unwrap_err();
    assert!(err.server_error().is_some(), "deleted: {err}");
    Ok(())
}

family!(
    /// PUBLISH (0 receivers, then 1), PUBSUB CHANNELS and NUMSUB.
    pubsub_publish => pubsub_family
);

async fn pubsub_family(p: Protocol, c: &Valkey) -> Result<()> {
    let ch = key(p, "chan");
    assert_eq!(c.publish(&ch, "nobody").await?, 0);
    assert!(!c.pubsub_channels::<Vec<String>>().await?.contains(&ch));
    let mut sub = c.subscriber().await?;
    sub.subscribe([&ch]).await?;
    assert_eq!(c.publish(&ch, "hello").await?, 1);
    let message = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a message within 5 s")
        .expect("the subscriber is open");
    assert_eq!(message.payload_str(), Some("hello"));
    let pattern = format!("{p:?}:ch*");
    let channels: Vec<String> = c
        .pubsub_channels_with(PubsubChannelsOptions::new().pattern(&pattern))
        .await?;
    assert_eq!(channels, std::slice::from_ref(&ch));
    let counts: Vec<(String, i64)> = c
        .pubsub_numsub_with(PubsubNumsubOptions::new().channel([&ch, &key(p, "other")]))
        .await?;
    assert_eq!(counts, [(ch.clone(), 1), (key(p, "other"), 0)]);
    assert_eq!(c.pubsub_numpat().await?, 0);
    drop(sub);
    Ok(())
}

family!(
    /// DBSIZE, INFO, CONFIG GET/SET, TIME, LASTSAVE, COMMAND COUNT, MEMORY
    /// USAGE, PING, ECHO.
    server => server_family
);

async fn server_family(p: Protocol, c: &Valkey) -> Result<()> {
    let k = key(p, "server");
    let before = c.dbsize().await?;
    c.set(&k, "a value").await?;
    assert_eq!(c.dbsize().await?, before + 1);

    let info = c.info().await?;
    assert!(
        info.contains("# Server") && info.contains("valkey_version:"),
        "{info:.200}"
    );
    let keyspace = c
        .info_with(InfoOptions::new().section(["keyspace", "clients"]))
        .await?;
    assert!(
        keyspace.contains("# Keyspace") && keyspace.contains("db0:keys="),
        "{keyspace}"
    );
    assert!(
        keyspace.contains("# Clients") && !keyspace.contains("# Server"),
        "{keyspace}"
    );

    let config: HashMap<String, String> = c.config_get(["maxmemory-policy", "hz"]).await?;
    assert_eq!(config.len(), 2, "{config:?}");
    let old_policy = config["maxmemory-policy"].clone();
    let (name, hz): (String, i64) = c.config_get("hz").await?;
    assert_eq!(
        (name.as_str(), hz.to_string()),
        ("hz", config["hz"].clone())
    );
    c.config_set([("maxmemory-policy", "allkeys-lru"), ("hz", "20")])
        .await?;
    let (_, policy): (String, String) = c.config_get("maxmemory-policy").await?;
    assert_eq!(policy, "allkeys-lru");
    c.config_set([
        ("maxmemory-policy", old_policy.as_str()),
        ("hz", config["hz"].as_str()),
    ])
    .await?;
    let (_, policy): (String, String) = c.config_get("maxmemory-policy").await?;
    assert_eq!(policy, old_policy);

    let (secs, micros): (i64, i64) = c.time().await?;
    assert!(
        secs > 1_600_000_000 && (0..1_000_000).contains(&micros),
        "{secs} {micros}"
    );
    let last = c.lastsave().await?;
    assert!(last > 1_600_000_000 && last <= secs, "{last}");
    let count = c.command_count().await?;
    assert!(count > 200, "{count}");

    let used = c.memory_usage(&k).await?.expect("the key exists");
    assert!(used > 0, "{used}");
    assert!(
        c.memory_usage_with(&k, MemoryUsageOptions::new().samples(0))
            .await?
            .is_some()
    );
    assert_eq!(c.memory_usage(key(p, "server:missing")).await?, None);

    assert_eq!(c.ping().await?, "PONG");
    assert_eq!(c.ping_with(PingOptions::new().message("hi")).await?, "hi");
    assert_eq!(c.echo::<String>("echo").await?, "echo");
    Ok(())
}

family!(
    /// CLIENT ID, INFO, LIST, GETNAME.
    client_commands => client_family
);

async fn client_family(p: Protocol, c: &Valkey) -> Result<()> {
    let id = c.client_id().await?;
    assert!(id > 0);
    let info = c.client_info().await?;
    assert!(info.contains(&format!("id={id} ")), "{info}");
    assert!(info.contains(&format!("resp={}", n(p))), "{info}");
    assert!(info.contains(&format!("name=families-{}", n(p))), "{info}");
    let list = c.client_list().await?;
    assert!(
        list.lines().any(|l| l.starts_with(&format!("id={id} "))),
        "{list}"
    );
    let mine = c
        .client_list_with(ClientListOptions::new().id([id]))
        .await?;
    assert_eq!(mine.lines().count(), 1, "{mine}");
    assert!(mine.starts_with(&format!("id={id} ")), "{mine}");
    let name: Option<String> = c.client_getname().await?;
    assert_eq!(name, Some(format!("families-{}", n(p))));
    Ok(())
}

family!(
    /// ACL SETUSER, GETUSER, USERS, DRYRUN, DELUSER, WHOAMI, CAT.
    acl => acl_family
);

async fn acl_family(p: Protocol, c: &Valkey) -> Result<()> {
    let user = format!("fam_user{}", n(p));
    c.acl_setuser_with(
        &user,
        AclSetuserOptions::new().rule(["on", ">secret", "~fam:*", "+get", "+set"]),
    )
    .await?;
    let details: HashMap<String, Value> = c.acl_getuser(&user).await?;
    let flags: Vec<String> = FromValue::from_value(details["flags"].clone())?;
    assert!(flags.contains(&"on".to_string()), "{flags:?}");
    let keys: String = FromValue::from_value(details["keys"].clone())?;
    assert_eq!(keys, "~fam:*");
    let none: Option<HashMap<String, Value>> = c.acl_getuser("no_such_user").await?;
    assert!(none.is_none());
    let users: Vec<String> = c.acl_users().await?;
    assert!(
        users.contains(&user) && users.contains(&"default".to_string()),
        "{users:?}"
    );
    let allowed: String = c
        .acl_dryrun_with(&user, "get", AclDryrunOptions::new().arg("fam:x"))
        .await?;
    assert_eq!(allowed, "OK");
    let denied: String = c
        .acl_dryrun_with(&user, "del", AclDryrunOptions::new().arg("fam:x"))
        .await?;
    assert!(denied.contains("no permissions"), "{denied}");
    let rules: Vec<String> = c.acl_list().await?;
    assert!(
        rules
            .iter()
            .any(|r| r.starts_with(&format!("user {user} on"))),
        "{rules:?}"
    );
    assert_eq!(c.acl_whoami().await?, "default");
    let categories: Vec<String> = c.acl_cat().await?;
    assert!(categories.iter().any(|c| c == "string") && categories.iter().any(|c| c == "keyspace"));
    let in_string: Vec<String> = c
        .acl_cat_with(AclCatOptions::new().category("string"))
        .await?;
    assert!(in_string.iter().any(|c| c == "get"), "{in_string:?}");
    assert_eq!(c.acl_deluser([&user]).await?, 1);
    assert_eq!(c.acl_deluser([&user]).await?, 0);
    Ok(())
}

/// The replies of the mixed pipeline: HSET, HGETALL, ZADD, ZRANGE
/// WITHSCORES, SET GET.
type MixedReplies = (
    i64,
    HashMap<String, String>,
    i64,
    Vec<(String, f64)>,
    Option<String>,
);

family!(
    /// Typed calls queued in a Pipeline and a Transaction, read as tuples.
    pipeline_and_transaction => batches_family
);

async fn batches_family(p: Protocol, c: &Valkey) -> Result<()> {
    let a = key(p, "batch:a");
    let mut pipe = Pipeline::new();
    pipe.set(&a, 1).incr(&a).get(&a);
    let ((), n, v): ((), i64, String) = c.pipeline_into(&mut pipe).await?;
    assert_eq!((n, v.as_str()), (2, "2"));

    let (b, h) = (key(p, "batch:b"), key(p, "batch:h"));
    let mut pipe = Pipeline::new();
    pipe.hset(&h, [("f", "v"), ("g", "w")])
        .hgetall(&h)
        .zadd(&b, [(1.5, "m")])
        .zrange_with(&b, 0, -1, ZrangeOptions::new().withscores())
        .set_with(&a, "3", SetOptions::new().get());
    let (added, map, zadded, scores, old): MixedReplies = c.pipeline_into(&mut pipe).await?;
    assert_eq!((added, map.len(), zadded), (2, 2, 1));
    assert_eq!(scores, [("m".to_string(), 1.5)]);
    assert_eq!(old.as_deref(), Some("2"));

    let t = key(p, "batch:tx");
    let mut tx = Transaction::new();
    tx.set(&t, 100).incrby(&t, -30).get(&t).del([&t]).exists(&t);
    let ((), left, read, deleted, exists): ((), i64, String, i64, i64) =
        c.exec_into(&mut tx).await?;
    assert_eq!((left, read.as_str(), deleted, exists), (70, "70", 1, 0));
    // A failed command inside EXEC fails the conversion with its error.
    let mut tx = Transaction::new();
    tx.set(&t, "text").incr(&t);
    let err = c.exec_into::<((), i64)>(&mut tx).await.unwrap_err();
    assert!(err.server_error().is_some(), "{err}");
    Ok(())
}
