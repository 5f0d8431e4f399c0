"""The peers pgcascade is measured against, deployed on the same lab hosts: Patroni with etcd and
vip-manager (bench only; nothing here is part of pgcascade's deploy)."""
