//! Streams with consumer groups, bitmaps, HyperLogLog and geo.

use super::*;

/// A stream entry: its id and fields.
type Entry = (String, HashMap<String, String>);

family!(
    /// XADD (auto and explicit ids, trimming), XLEN, XRANGE, consumer
    /// groups (XGROUP CREATE, XREADGROUP, XACK, XPENDING, XCLAIM,
    /// XAUTOCLAIM), XTRIM, XINFO STREAM.
    streams => streams_family
);

async fn streams_family(p: Protocol, c: &Valkey) -> Result<()> {
    let s = key(p, "stream");
    let id1: String = c
        .xadd(&s, XaddIdSelector::Id("1-1".into()), [("f", "v1")])
        .await?;
    assert_eq!(id1, "1-1");
    let id2: String = c
        .xadd(&s, XaddIdSelector::Id("2-1".into()), ("f", "v2"))
        .await?;
    assert_eq!(id2, "2-1");
    let id3: String = c
        .xadd(&s, XaddIdSelector::AutoId, [("f", "v3"), ("g", "w")])
        .await?;
    let ms: u64 = id3
        .split('-')
        .next()
        .unwrap()
        .parse()
        .expect("an id ms-seq");
    assert!(ms > 1_600_000_000_000, "{id3}");
    let err = c
        .xadd::<String>(&s, XaddIdSelector::Id("1-0".into()), [("f", "old")])
        .await
        .unwrap_err();
    assert!(
        err.server_error().is_some(),
        "an id below the top is refused: {err}"
    );
    let none: Option<String> = c
        .xadd_with(
            key(p, "stream:none"),
            XaddIdSelector::AutoId,
            [("f", "v")],
            XaddOptions::new().nomkstream(),
        )
        .await?;
    assert_eq!(none, None);
    assert_eq!(c.xlen(&s).await?, 3);

    let entries: Vec<Entry> = c.xrange(&s, "-", "+").await?;
    assert_eq!(
        entries.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        [&*id1, &*id2, &*id3]
    );
    assert_eq!(entries[2].1["g"], "w");
    let first: Vec<Entry> = c
        .xrange_with(&s, "-", "+", XrangeOptions::new().count(1))
        .await?;
    assert_eq!(first[0].1["f"], "v1");
    let last: Vec<Entry> = c
        .xrevrange_with(&s, "+", "-", XrevrangeOptions::new().count(1))
        .await?;
    assert_eq!(last[0].0, id3);

    // Groups: MKSTREAM makes the key.
    let s2 = key(p, "stream:made");
    c.xgroup_create_with(
        &s2,
        "g",
        XgroupCreateIdSelector::NewId,
        XgroupCreateOptions::new().mkstream(),
    )
    .await?;
    assert_eq!((c.exists(&s2).await?, c.xlen(&s2).await?), (1, 0));
    c.xgroup_create(&s, "g", XgroupCreateIdSelector::Id("0".into()))
        .await?;

    let read: HashMap<String, Vec<Entry>> = c
        .xreadgroup_with("g", "c1", [&s], [">"], XreadgroupOptions::new().count(2))
        .await?;
    let got: Vec<&str> = read[&s].iter().map(|e| e.0.as_str()).collect();
    assert_eq!(got, [&*id1, &*id2]);
    let read: Option<HashMap<String, Vec<Entry>>> = c.xreadgroup("g", "c1", [&s], [">"]).await?;
    assert_eq!(read.expect("one more entry")[&s][0].0, id3);
    let read: Option<HashMap<String, Vec<Entry>>> = c.xreadgroup("g", "c1", [&s], [">"]).await?;
    assert!(
        read.as_ref().is_none_or(|r| r.is_empty()),
        "nothing new: {read:?}"
    );

    let (count, low, high, consumers): (i64, String, String, Vec<(String, i64)>) =
        c.xpending(&s, "g").await?;
    assert_eq!((count, low, high), (3, id1.clone(), id3.clone()));
    assert_eq!(consumers, [("c1".to_string(), 3)]);
    assert_eq!(c.xack(&s, "g", [&id1]).await?, 1);
    assert_eq!(c.xack(&s, "g", [&id1]).await?, 0);
    let pending: Vec<(String, String, i64, i64)> = c
        .xpending_with(&s, "g", XpendingOptions::new().filters("-", "+", 10))
        .await?;
    assert_eq!(pending.len(), 2);
    assert!(
        pending
            .iter()
            .all(|(_, consumer, _, deliveries)| consumer == "c1" && *deliveries == 1)
    );
    let pending: Vec<(String, String, i64, i64)> = c
        .xpending_with(
            &s,
            "g",
            XpendingOptions::new()
                .idle(0)
                .filters("-", "+", 10)
                .consumer("nobody"),
        )
        .await?;
    assert!(pending.is_empty());

    // XCLAIM one entry to c2 (entries), one by id only.
    let claimed: Vec<Entry> = c.xclaim(&s, "g", "c2", 0, [&id2]).await?;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].1["f"], "v2");
    let ids: Vec<String> = c
        .xclaim_with(&s, "g", "c2", 0, [&id3], XclaimOptions::new().justid())
        .await?;
    assert_eq!(ids, std::slice::from_ref(&id3));
    let (_, _, _, consumers): (i64, String, String, Vec<(String, i64)>) =
        c.xpending(&s, "g").await?;
    assert_eq!(consumers, [("c2".to_string(), 2)]);
    // XAUTOCLAIM everything to c3: the next cursor, the entries, the
    // deleted ids.
    let (cursor, entries, deleted): (String, Vec<Entry>, Vec<String>) = c
        .xautoclaim_with(&s, "g", "c3", 0, "0-0", XautoclaimOptions::new().count(10))
        .await?;
    assert_eq!(cursor, "0-0");
    assert_eq!(
        entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        [id2.clone(), id3.clone()]
    );
    assert!(deleted.is_empty());

    // XINFO STREAM, plain and FULL.
    let info: HashMap<String, Value> = c.xinfo_stream(&s).await?;
    assert_eq!(i64::from_value(info["length"].clone())?, 3);
    assert_eq!(i64::from_value(info["groups"].clone())?, 1);
    assert_eq!(String::from_value(info["last-generated-id"].clone())?, id3);
    let full: HashMap<String, Value> = c
        .xinfo_stream_with(&s, XinfoStreamOptions::new().full().count(10))
        .await?;
    let full_entries: Vec<Entry> = FromValue::from_value(full["entries"].clone())?;
    assert_eq!(full_entries.len(), 3);
    let groups: Vec<HashMap<String, Value>> = c.xinfo_groups(&s).await?;
    assert_eq!(String::from_value(groups[0]["name"].clone())?, "g");

    // XTRIM: exact MAXLEN, then MINID past the last id.
    assert_eq!(
        c.xtrim_with(&s, TrimStrategy::Maxlen, 1, XtrimOptions::new().equal())
            .await?,
        2
    );
    assert_eq!(c.xlen(&s).await?, 1);
    assert_eq!(
        c.xtrim(&s, TrimStrategy::Minid, "99999999999999-0").await?,
        1
    );
    assert_eq!(c.xlen(&s).await?, 0);
    // XADD with exact trimming keeps the newest two.
    let s3 = key(p, "stream:capped");
    for i in 0..4 {
        let _: String = c
            .xadd_with(
                &s3,
                XaddIdSelector::AutoId,
                [("i", i)],
                XaddOptions::new().trim(TrimStrategy::Maxlen, 2).equal(),
            )
            .await?;
    }
    let kept: Vec<Entry> = c.xrange(&s3, "-", "+").await?;
    assert_eq!(
        kept.iter().map(|e| e.1["i"].as_str()).collect::<Vec<_>>(),
        ["2", "3"]
    );
    Ok(())
}

family!(
    /// SETBIT, GETBIT, BITCOUNT, BITOP, BITPOS, BITFIELD.
    bitmaps => bitmaps_family
);

async fn bitmaps_family(p: Protocol, c: &Valkey) -> Result<()> {
    let (b, b2, dst) = (key(p, "bits"), key(p, "bits:2"), key(p, "bits:dst"));
    assert_eq!(c.setbit(&b, 7, 1).await?, 0);
    assert_eq!(c.setbit(&b, 7, 1).await?, 1, "the old bit");
    assert_eq!(c.setbit(&b, 9, 1).await?, 0);
    assert_eq!(
        (
            c.getbit(&b, 7).await?,
            c.getbit(&b, 8).await?,
            c.getbit(&b, 100).await?
        ),
        (1, 0, 0)
    );
    assert_eq!(c.bitcount(&b).await?, 2);
    let in_byte_1 = c
        .bitcount_with(&b, BitcountOptions::new().range(1).end(1))
        .await?;
    assert_eq!(in_byte_1, 1);
    let in_bits = c
        .bitcount_with(&b, BitcountOptions::new().range(0).end(7).bit())
        .await?;
    assert_eq!(in_bits, 1);
    assert_eq!(c.bitpos(&b, 1).await?, 7);
    assert_eq!(c.bitpos(&b, 0).await?, 0);
    assert_eq!(
        c.bitpos_with(&b, 1, BitposOptions::new().range(1)).await?,
        9
    );
    assert_eq!(
        c.bitpos_with(&b, 1, BitposOptions::new().range(8).end(15).bit())
            .await?,
        9
    );

    // b is bits 7 and 9 (2 bytes); b2 is bit 7 (1 byte).
    c.setbit(&b2, 7, 1).await?;
    assert_eq!(c.bitop(BitOperation::And, &dst, [&b, &b2]).await?, 2);
    assert_eq!(c.bitcount(&dst).await?, 1);
    assert_eq!(c.bitop(BitOperation::Or, &dst, [&b, &b2]).await?, 2);
    assert_eq!(c.bitcount(&dst).await?, 2);
    assert_eq!(c.bitop(BitOperation::Not, &dst, [&b2]).await?, 1);
    assert_eq!(c.bitcount(&dst).await?, 7);

    // BITFIELD: SET u8 to 200, a saturating INCRBY of 100, GET.
    let bf = key(p, "bits:field");
    let u8_at_0 = || ("u8".to_string(), 0);
    let ops = vec![
        BitfieldOperation::Write(BitfieldWrite {
            overflow_block: None,
            write_operation: BitfieldWriteOperation::SetBlock(BitfieldSetBlock {
                encoding: u8_at_0().0,
                offset: u8_at_0().1,
                value: 200,
            }),
        }),
        BitfieldOperation::Write(BitfieldWrite {
            overflow_block: Some(BitfieldOverflowBlock::Sat),
            write_operation: BitfieldWriteOperation::IncrbyBlock(BitfieldIncrbyBlock {
                encoding: u8_at_0().0,
                offset: u8_at_0().1,
                increment: 100,
            }),
        }),
        BitfieldOperation::GetBlock(BitfieldGetBlock {
            encoding: u8_at_0().0,
            offset: u8_at_0().1,
        }),
    ];
    let out: Vec<i64> = c
        .bitfield_with(&bf, BitfieldOptions::new().operation(ops))
        .await?;
    assert_eq!(out, [0, 255, 255]);
    let out: Vec<i64> = c
        .bitfield_ro_with(&bf, BitfieldRoOptions::new().get("u8", 0).get("u4", 0))
        .await?;
    assert_eq!(out, [255, 15]);
    Ok(())
}

family!(
    /// PFADD, PFCOUNT, PFMERGE.
    hyperloglog => hyperloglog_family
);

async fn hyperloglog_family(p: Protocol, c: &Valkey) -> Result<()> {
    let (h1, h2, h3, dst) = (
        key(p, "hll:1"),
        key(p, "hll:2"),
        key(p, "hll:3"),
        key(p, "hll:dst"),
    );
    assert_eq!(
        c.pfadd_with(&h1, PfaddOptions::new().element(["a", "b", "c"]))
            .await?,
        1
    );
    assert_eq!(
        c.pfadd_with(&h1, PfaddOptions::new().element(["a", "b"]))
            .await?,
        0
    );
    assert_eq!(c.pfadd(&h3).await?, 1, "creates an empty HLL");
    assert_eq!(c.pfadd(&h3).await?, 0);
    assert_eq!(c.pfcount(&h1).await?, 3);
    assert_eq!(c.pfcount(&h3).await?, 0);
    c.pfadd_with(&h2, PfaddOptions::new().element(["c", "d"]))
        .await?;
    assert_eq!(c.pfcount([&h1, &h2]).await?, 4);
    c.pfmerge_with(&dst, PfmergeOptions::new().sourcekey([&h1, &h2]))
        .await?;
    assert_eq!(c.pfcount(&dst).await?, 4);
    c.pfmerge(&dst).await?;
    assert_eq!(c.pfcount(&dst).await?, 4);
    Ok(())
}

family!(
    /// GEOADD, GEODIST with a unit, GEOPOS, GEOSEARCH (FROMLONLAT and
    /// BYRADIUS, FROMMEMBER and BYBOX), GEOSEARCHSTORE.
    geo => geo_family
);

async fn geo_family(p: Protocol, c: &Valkey) -> Result<()> {
    let g = key(p, "geo");
    let places = [
        (13.361389, 38.115556, "Palermo"),
        (15.087269, 37.502669, "Catania"),
    ];
    assert_eq!(c.geoadd(&g, places).await?, 2);
    assert_eq!(
        c.geoadd_with(&g, [places[0]], GeoaddOptions::new().nx())
            .await?,
        0
    );
    assert_eq!(
        c.geoadd_with(
            &g,
            [(13.5, 38.0, "Palermo")],
            GeoaddOptions::new().xx().ch()
        )
        .await?,
        1
    );
    c.geoadd(&g, [places[0]]).await?;

    let m = c
        .geodist(&g, "Palermo", "Catania")
        .await?
        .expect("both present");
    assert!(near(m, 166_274.15, 1.0), "{m}");
    let km = c
        .geodist_with(&g, "Palermo", "Catania", GeodistOptions::new().km())
        .await?;
    assert!(near(km.unwrap(), 166.274, 0.01), "{km:?}");
    let mi = c
        .geodist_with(&g, "Palermo", "Catania", GeodistOptions::new().mi())
        .await?;
    assert!(near(mi.unwrap(), 103.318, 0.01), "{mi:?}");
    assert_eq!(c.geodist(&g, "Palermo", "Nowhere").await?, None);

    let pos: Vec<Option<(f64, f64)>> = c
        .geopos_with(&g, GeoposOptions::new().member(["Palermo", "Catania"]))
        .await?;
    let (lon, lat) = pos[0].expect("Palermo has a position");
    assert!(
        near(lon, 13.361389, 1e-4) && near(lat, 38.115556, 1e-4),
        "{pos:?}"
    );
    // With a missing member the reply mixes arrays and nils.
    let pos: Vec<Option<(f64, f64)>> = c
        .geopos_with(&g, GeoposOptions::new().member(["Nowhere", "Catania"]))
        .await?;
    assert_eq!(pos[0], None);
    let catania = pos[1].expect("Catania has a position");
    assert!(
        near(catania.0, 15.087269, 1e-4) && near(catania.1, 37.502669, 1e-4),
        "{pos:?}"
    );
    let hashes: Vec<String> = c
        .geohash_with(&g, GeohashOptions::new().member("Palermo"))
        .await?;
    assert_eq!(hashes, ["sqc8b49rny0"]);

    let within = |radius| {
        GeosearchBy::Circle(GeosearchCircle {
            radius,
            unit: GeoUnit::Km,
        })
    };
    let names: Vec<String> = c
        .geosearch_with(
            &g,
            within(200.0),
            GeosearchOptions::new().fromlonlat(15.0, 37.0).asc(),
        )
        .await?;
    assert_eq!(names, ["Catania", "Palermo"]);
    let names: Vec<String> = c
        .geosearch_with(
            &g,
            within(100.0),
            GeosearchOptions::new().fromlonlat(15.0, 37.0),
        )
        .await?;
    assert_eq!(names, ["Catania"]);
    let with_dist: Vec<(String, f64)> = c
        .geosearch_with(
            &g,
            within(200.0),
            GeosearchOptions::new()
                .fromlonlat(15.0, 37.0)
                .withdist()
                .desc(),
        )
        .await?;
    assert_eq!(with_dist.len(), 2);
    assert_eq!(with_dist[0].0, "Palermo");
    assert!(near(with_dist[1].1, 56.4413, 0.01), "{with_dist:?}");
    let boxed: Vec<String> = c
        .geosearch_with(
            &g,
            GeosearchBy::Box(GeosearchBox {
                width: 400.0,
                height: 400.0,
                unit: GeoUnit::Km,
            }),
            GeosearchOptions::new().frommember("Palermo").asc().count(1),
        )
        .await?;
    assert_eq!(boxed, ["Palermo"]);

    // BYPOLYGON (Valkey 9) takes no FROMMEMBER/FROMLONLAT; the vertex
    // count is the caller's to give.
    let corner = |longitude, latitude| GeosearchVertices {
        longitude,
        latitude,
    };
    let square = vec![
        corner(13.0, 38.0),
        corner(14.0, 38.0),
        corner(14.0, 39.0),
        corner(13.0, 39.0),
    ];
    let in_square: Vec<String> = c
        .geosearch_with(
            &g,
            GeosearchBy::Polygon(GeosearchPolygon { vertices: square }),
            GeosearchOptions::new(),
        )
        .await?;
    assert_eq!(in_square, ["Palermo"]);

    let dst = key(p, "geo:dst");
    let stored = c
        .geosearchstore_with(
            &dst,
            &g,
            GeosearchstoreBy::Circle(GeosearchstoreCircle {
                radius: 200.0,
                unit: GeoUnit::Km,
            }),
            GeosearchstoreOptions::new()
                .fromlonlat(15.0, 37.0)
                .asc()
                .count(1),
        )
        .await?;
    assert_eq!(stored, 1);
    assert_eq!(c.zrange::<Vec<String>>(&dst, 0, -1).await?, ["Catania"]);
    let stored = c
        .geosearchstore_with(
            &dst,
            &g,
            GeosearchstoreBy::Circle(GeosearchstoreCircle {
                radius: 200.0,
                unit: GeoUnit::Km,
            }),
            GeosearchstoreOptions::new()
                .fromlonlat(15.0, 37.0)
                .storedist(),
        )
        .await?;
    assert_eq!(stored, 2);
    let d = c.zscore(&dst, "Catania").await?.unwrap();
    assert!(near(d, 56.4413, 0.01), "{d}");
    let radius: Vec<String> = c.georadius(&g, 15.0, 37.0, 200.0, GeoUnit::Km).await?;
    assert_eq!(radius.len(), 2);
    Ok(())
}
