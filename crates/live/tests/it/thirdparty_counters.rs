//! HAProxy's and nginx's counters read into the mesh's terms: the stats
//! each exposes, the configs that expose them, and bad input refused with
//! a message rather than a panic.

use std::net::SocketAddr;
use std::path::Path;

use meshsim_live::orchestrate::thirdparty::{
    haproxy_config, nginx_config, parse_haproxy_stats, parse_nginx_status,
};
use meshsim_scenario::Policy;

/// The header of HAProxy 2.6's `show stat`.
const HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

/// A CSV row with `values` in the named columns, empty elsewhere.
fn row(values: &[(&str, &str)]) -> String {
    let cols: Vec<&str> = HEADER.trim_start_matches("# ").split(',').collect();
    cols.iter()
        .map(|c| values.iter().find(|(k, _)| k == c).map_or("", |(_, v)| *v))
        .collect::<Vec<_>>()
        .join(",")
}

fn servers() -> Vec<SocketAddr> {
    vec![
        "127.0.0.1:9001".parse().expect("addr"),
        "127.0.0.1:9002".parse().expect("addr"),
    ]
}

#[test]
fn haproxy_stats_give_retries_redispatches_attempts_and_down_transitions() {
    let csv = [
        HEADER.to_owned(),
        row(&[
            ("pxname", "sidecar"),
            ("svname", "FRONTEND"),
            ("stot", "1"),
            ("req_tot", "3"),
        ]),
        row(&[
            ("pxname", "upstream"),
            ("svname", "s0"),
            ("stot", "5"),
            ("wretr", "3"),
            ("wredis", "3"),
            ("chkdown", "1"),
        ]),
        row(&[
            ("pxname", "upstream"),
            ("svname", "s1"),
            ("stot", "4"),
            ("wretr", "3"),
            ("wredis", "3"),
            ("chkdown", "0"),
        ]),
        row(&[
            ("pxname", "upstream"),
            ("svname", "BACKEND"),
            ("stot", "3"),
            ("wretr", "6"),
            ("wredis", "6"),
            ("chkdown", "0"),
        ]),
        String::new(),
    ]
    .join("\n");
    let s = servers();
    let c = parse_haproxy_stats(&csv, &s).expect("parses");
    // As measured on HAProxy 2.6: 3 requests on one keep-alive connection
    // (one frontend session) to servers that always answer 500, with 2
    // retries each and `option redispatch 1`.
    assert_eq!(c.requests, 3);
    assert_eq!((c.retries, c.redispatches), (6, 6));
    assert_eq!(c.attempts.get(&s[0]), Some(&5));
    assert_eq!(c.attempts.get(&s[1]), Some(&4));
    assert_eq!(c.down.get(&s[0]), Some(&1));
    assert_eq!(c.down.get(&s[1]), Some(&0));
}

#[test]
fn bad_stats_are_errors_not_panics() {
    let e = parse_haproxy_stats("Unknown command\n", &servers()).expect_err("no header");
    assert!(e.contains("header"), "{e}");
    let e = parse_haproxy_stats("# pxname,svname\nupstream,s0\n", &servers())
        .expect_err("missing columns");
    assert!(e.contains("stot"), "{e}");
    // Unknown servers and short rows are skipped.
    let csv = format!("{HEADER}\nupstream,s9\nupstream\n");
    let c = parse_haproxy_stats(&csv, &servers()).expect("parses");
    assert!(c.attempts.is_empty());
    let e = parse_nginx_status("<html>404</html>").expect_err("not stub_status");
    assert!(e.contains("stub_status"), "{e}");
    let e =
        parse_nginx_status("server accepts handled requests\n 1 x 3\n").expect_err("bad number");
    assert!(e.contains("\"x\""), "{e}");
}

#[test]
fn nginx_stub_status_gives_the_requests_and_nothing_more() {
    let text = "Active connections: 2 \nserver accepts handled requests\n 16 16 31 \nReading: 0 Writing: 1 Waiting: 1 \n";
    let c = parse_nginx_status(text).expect("parses");
    assert_eq!(c.requests, 31);
    assert_eq!(c.retries, 0);
    assert!(c.attempts.is_empty());
}

#[test]
fn the_configs_expose_the_counters_where_asked() {
    let listen: SocketAddr = "127.0.0.1:10000".parse().expect("addr");
    let p = Policy::default();
    let h = haproxy_config(listen, &servers(), &p, Some(Path::new("/tmp/run/h.sock")));
    assert!(
        h.contains("stats socket /tmp/run/h.sock mode 600 level user"),
        "{h}"
    );
    assert!(h.contains("server s1 127.0.0.1:9002"), "{h}");
    assert!(!haproxy_config(listen, &servers(), &p, None).contains("stats socket"));
    let status: SocketAddr = "127.0.0.1:10001".parse().expect("addr");
    let n = nginx_config(listen, &servers(), &p, Path::new("/tmp/run"), Some(status));
    assert!(n.contains("listen 127.0.0.1:10001;"), "{n}");
    assert!(n.contains("stub_status;"), "{n}");
    // Still one balanced http block: every brace closed.
    assert_eq!(n.matches('{').count(), n.matches('}').count(), "{n}");
    assert!(n.trim_end().ends_with('}'), "{n}");
}
