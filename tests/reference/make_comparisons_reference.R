# Golden numbers for monitoring/group_tests.py, regression.py and comparisons.py (group
# comparisons), computed by R's survival and cmprsk packages.
#
#   Rscript tests/reference/make_comparisons_reference.R
#
# Writes the input datasets (cmp_*.csv) and R's results (ref_cmp_*.csv) next to this script, with
# sprintf("%.17g") so that numbers round-trip exactly; an empty cell is R's NA. CI has no R: the
# files are committed and tests/test_comparisons_reference.py compares the Python code with them.
#
# Datasets (km_small.csv and km_groups.csv come from make_reference.R and are read, not rewritten)
#   km_small.csv       16 patients, groups A/B, tied events and censorings, events at day 0.
#   km_groups.csv      200 patients, 3 products, integer days, many ties, events at day 0.
#   cmp_km_noevent.csv 40 patients in 4 groups; group "none" has no event at all.
#   cmp_cr_groups.csv  240 patients in 3 groups, causes relapse_cd19_positive,
#                      relapse_antigen_escape, death, hsct on a weekly grid (causes tie with each
#                      other and with censorings), events at day 0; group "C" has no
#                      antigen-escape relapse.
#   cmp_cr_small.csv   18 hand-made patients in 2 groups, ties across causes and censorings.
#
# Results
#   ref_cmp_logrank.csv  survdiff chi-square, df, p for all groups and each pair; p.adjust holm.
#   ref_cmp_cox.csv      coxph (Efron) against a reference: coef, se, hr, limits, Wald p.
#   ref_cmp_rmst.csv     print(survfit, rmean = horizon)'s rmean and se(rmean) per group.
#   ref_cmp_gray.csv     cuminc's Gray test per cause for all groups and each pair; holm.
#   ref_cmp_crr.csv      crr per relapse cause against a reference: coef, se, hr, limits, p.
#                        A group with no event of the cause has no finite coefficient; it is
#                        left out of the model (crr on the other groups' patients) and its row
#                        is NA.

suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
})
options(digits = 17, warn = 1)

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(script) == 1) dirname(normalizePath(script)) else "tests/reference"

fmt <- function(x) {
  if (is.numeric(x)) {
    out <- sprintf("%.17g", x)
    out[is.na(x)] <- ""
    out
  } else {
    out <- as.character(x)
    out[is.na(out)] <- ""
    out
  }
}
write_ref <- function(df, name) {
  df[] <- lapply(df, fmt)
  write.csv(df, file.path(outdir, name), row.names = FALSE, quote = TRUE, na = "")
}
z <- qnorm(0.975)

# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------
km_small <- read.csv(file.path(outdir, "km_small.csv"), stringsAsFactors = FALSE)
km_groups <- read.csv(file.path(outdir, "km_groups.csv"), stringsAsFactors = FALSE)

set.seed(15)
n <- 40
grp <- rep(c("low", "mid", "high", "none"), each = 10)
rate <- c(low = 1 / 60, mid = 1 / 35, high = 1 / 15, none = 1 / 1e9)[grp]
ev_t <- ceiling(rexp(n, rate))
cen_t <- sample(5:90, n, replace = TRUE)
km_noevent <- data.frame(time = pmin(ev_t, cen_t), event = as.integer(ev_t <= cen_t),
                         group = grp)
km_noevent$event[km_noevent$group == "none"] <- 0
km_noevent$time[c(1, 11)] <- 0          # an event at day 0 in two groups
km_noevent$event[c(1, 11)] <- 1

set.seed(1515)
n <- 240
week <- function(x) 7 * ceiling(x / 7)
grp <- sample(c("A", "B", "C"), n, replace = TRUE, prob = c(0.45, 0.35, 0.2))
r_pos <- c(A = 1 / 700, B = 1 / 400, C = 1 / 500)[grp]
r_esc <- c(A = 1 / 1500, B = 1 / 900, C = 1e-12)[grp]
t_pos <- week(rexp(n, r_pos))
t_esc <- week(rexp(n, r_esc))
t_death <- week(rexp(n, 1 / 2500))
t_hsct <- week(rexp(n, 1 / 1800))
t_cens <- week(runif(n, 30, 1400))
tt <- pmin(t_pos, t_esc, t_death, t_hsct, t_cens)
cause <- ifelse(tt == t_pos, "relapse_cd19_positive",
         ifelse(tt == t_esc, "relapse_antigen_escape",
         ifelse(tt == t_death, "death", ifelse(tt == t_hsct, "hsct", ""))))
cause[grp == "C" & cause == "relapse_antigen_escape"] <- "relapse_cd19_positive"
tt[1:8] <- 91                              # ties across causes and with censoring
cause[1:8] <- c("relapse_cd19_positive", "death", "", "relapse_antigen_escape",
                "relapse_cd19_positive", "hsct", "", "death")
tt[9:10] <- 0
cause[9:10] <- c("relapse_cd19_positive", "death")
cr_groups <- data.frame(time = tt, cause = cause, group = grp)

cr_small <- data.frame(
  time  = c(0, 2, 2, 2, 3, 5, 5, 6, 9,   1, 2, 2, 4, 4, 5, 7, 7, 9),
  cause = c("relapse", "relapse", "death", "", "relapse", "", "death", "relapse", "",
            "death", "relapse", "", "relapse", "relapse", "", "death", "", "relapse"),
  group = c(rep("X", 9), rep("Y", 9))
)

write.csv(km_noevent, file.path(outdir, "cmp_km_noevent.csv"), row.names = FALSE)
write.csv(cr_groups, file.path(outdir, "cmp_cr_groups.csv"), row.names = FALSE)
write.csv(cr_small, file.path(outdir, "cmp_cr_small.csv"), row.names = FALSE)

# ---------------------------------------------------------------------------------------------
# KM endpoints: log-rank (all and pairwise, Holm), Cox, RMST
# ---------------------------------------------------------------------------------------------
km_sets <- list(km_small = km_small, km_groups = km_groups, cmp_km_noevent = km_noevent)
lr_rows <- list(); cox_rows <- list(); rm_rows <- list()
for (name in names(km_sets)) {
  d <- km_sets[[name]]
  levels_ <- sort(unique(d$group))
  sd <- survdiff(Surv(time, event) ~ group, data = d)
  lr_rows[[length(lr_rows) + 1]] <- data.frame(
    dataset = name, group_a = "", group_b = "", chisq = sd$chisq,
    df = sum(sd$exp > 0) - 1, p = sd$pvalue, p_holm = NA)
  pairs <- combn(levels_, 2)
  pp <- c(); rows <- list()
  for (k in seq_len(ncol(pairs))) {
    sub <- d[d$group %in% pairs[, k], ]
    s2 <- survdiff(Surv(time, event) ~ group, data = sub)
    df2 <- sum(s2$exp > 0) - 1
    p2 <- if (df2 > 0) s2$pvalue else NA
    pp <- c(pp, p2)
    rows[[k]] <- data.frame(dataset = name, group_a = pairs[1, k], group_b = pairs[2, k],
                            chisq = if (df2 > 0) s2$chisq else NA, df = df2, p = p2,
                            p_holm = NA)
  }
  holm <- p.adjust(pp, "holm")
  for (k in seq_along(rows)) {
    rows[[k]]$p_holm <- holm[k]
    lr_rows[[length(lr_rows) + 1]] <- rows[[k]]
  }

  for (ref in levels_) {
    events_ref <- sum(d$event[d$group == ref])
    if (events_ref == 0) next
    d$grp <- relevel(factor(d$group), ref = ref)
    fit <- suppressWarnings(coxph(Surv(time, event) ~ grp, data = d, ties = "efron"))
    s <- summary(fit)
    for (g in setdiff(levels_, ref)) {
      term <- paste0("grp", g)
      no_events <- sum(d$event[d$group == g]) == 0
      b <- s$coefficients[term, "coef"]; se <- s$coefficients[term, "se(coef)"]
      cox_rows[[length(cox_rows) + 1]] <- data.frame(
        dataset = name, reference = ref, group = g,
        coef = if (no_events) NA else b, se = if (no_events) NA else se,
        hr = if (no_events) NA else exp(b),
        lower = if (no_events) NA else s$conf.int[term, "lower .95"],
        upper = if (no_events) NA else s$conf.int[term, "upper .95"],
        p = if (no_events) NA else s$coefficients[term, "Pr(>|z|)"])
    }
  }

  for (g in levels_) {
    fit <- survfit(Surv(time, event) ~ 1, data = d[d$group == g, ])
    for (months in c(12, 24, 1, 0.5)) {   # 1 and 0.5 months fall inside the short data sets
      horizon <- months * 30.4375
      tab <- summary(fit, rmean = horizon)$table
      rm_rows[[length(rm_rows) + 1]] <- data.frame(
        dataset = name, group = g, horizon = horizon,
        rmean = unname(tab["rmean"]), se = unname(tab["se(rmean)"]))
    }
  }
}
write_ref(do.call(rbind, lr_rows), "ref_cmp_logrank.csv")
write_ref(do.call(rbind, cox_rows), "ref_cmp_cox.csv")
write_ref(do.call(rbind, rm_rows), "ref_cmp_rmst.csv")

# ---------------------------------------------------------------------------------------------
# Competing risks: Gray's test (cuminc) and Fine-Gray (crr)
# ---------------------------------------------------------------------------------------------
cr_sets <- list(cmp_cr_groups = cr_groups, cmp_cr_small = cr_small)
cr_causes <- list(cmp_cr_groups = c("relapse_cd19_positive", "relapse_antigen_escape"),
                  cmp_cr_small = c("relapse", "death"))
gray_rows <- list(); crr_rows <- list()
gray_of <- function(d, k) {
  status <- ifelse(d$cause == "", "0", d$cause)
  ci <- cuminc(d$time, status, d$group, cencode = "0")
  tests <- ci$Tests
  if (!(k %in% rownames(tests))) return(c(NA, NA, NA))
  st <- tests[k, "stat"]
  if (st < 0) return(c(NA, tests[k, "df"], NA))
  c(st, tests[k, "df"], tests[k, "pv"])
}
for (name in names(cr_sets)) {
  d <- cr_sets[[name]]
  levels_ <- sort(unique(d$group))
  for (k in cr_causes[[name]]) {
    g <- gray_of(d, k)
    gray_rows[[length(gray_rows) + 1]] <- data.frame(
      dataset = name, cause = k, group_a = "", group_b = "", stat = g[1], df = g[2],
      p = g[3], p_holm = NA)
    pairs <- combn(levels_, 2)
    pp <- c(); rows <- list()
    for (j in seq_len(ncol(pairs))) {
      g2 <- gray_of(d[d$group %in% pairs[, j], ], k)
      pp <- c(pp, g2[3])
      rows[[j]] <- data.frame(dataset = name, cause = k, group_a = pairs[1, j],
                              group_b = pairs[2, j], stat = g2[1], df = g2[2], p = g2[3],
                              p_holm = NA)
    }
    holm <- p.adjust(pp, "holm")
    for (j in seq_along(rows)) {
      rows[[j]]$p_holm <- holm[j]
      gray_rows[[length(gray_rows) + 1]] <- rows[[j]]
    }

    for (ref in levels_) {
      if (sum(d$cause == k & d$group == ref) == 0) next
      others <- setdiff(levels_, ref)
      none <- sapply(others, function(g) sum(d$cause == k & d$group == g) == 0)
      dd <- d[!(d$group %in% others[none]), ]
      grp <- relevel(factor(dd$group), ref = ref)
      cov <- model.matrix(~grp)[, -1, drop = FALSE]
      fit <- crr(dd$time, dd$cause, cov1 = cov, failcode = k, cencode = "")
      b <- fit$coef[paste0("grp", others)]; se <- sqrt(diag(fit$var))
      names(se) <- names(fit$coef); se <- se[paste0("grp", others)]
      for (j in seq_along(others)) {
        na <- none[j]
        crr_rows[[length(crr_rows) + 1]] <- data.frame(
          dataset = name, cause = k, reference = ref, group = others[j],
          converged = fit$converged,
          coef = if (na) NA else b[j], se = if (na) NA else se[j],
          hr = if (na) NA else exp(b[j]),
          lower = if (na) NA else exp(b[j] - z * se[j]),
          upper = if (na) NA else exp(b[j] + z * se[j]),
          p = if (na) NA else 2 * (1 - pnorm(abs(b[j]) / se[j])))
      }
    }
  }
}
write_ref(do.call(rbind, gray_rows), "ref_cmp_gray.csv")
write_ref(do.call(rbind, crr_rows), "ref_cmp_crr.csv")
cat("comparison reference files written to", outdir, "\n")
